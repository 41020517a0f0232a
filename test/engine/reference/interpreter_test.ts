/** The reference interpreter on the issue's own examples, checked by hand against the docs. */
import assert from "node:assert/strict";
import { loadProject } from "../../../engine/domain/project/mod.ts";
import { writeProject } from "../../support/engine.ts";
import { evaluate } from "./interpreter.ts";
import type { Action, ToolModel, WaitPlan } from "./types.ts";

const echo: ToolModel = (_tool, input) => ({ ok: true, output: input, ms: 5 });

async function evaluateYaml(tasks: string, input: unknown = {}, plan: WaitPlan = {}, tools = echo) {
  const dir = await writeProject({
    "compozy.yaml": "name: ref\nworkflows:\n  - source: ./wf.yaml\n",
    "wf.yaml": `id: main\ntools:\n  - id: t\n    execute: ./t.ts\n    timeout: 400ms\n${tasks}`,
    "t.ts": "export default (input: unknown) => input;\n",
  });
  try {
    return await evaluate(await loadProject(dir), "main", input, { tools, plan });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("reference: each collection item reads its own sibling's result (defect 1)", async () => {
  const result = await evaluateYaml(`tasks:
  - id: each
    type: collection
    items: [x, y, z]
    task:
      id: item
      type: composite
      tasks:
        - id: a
          use: tool(id=t)
          with: { tag: "{{ .item }}" }
        - id: nap
          type: sleep
          duration: 1s
        - id: agg
          type: aggregate
          outputs: { from_a: "{{ .tasks.a.output.tag }}", item: "{{ .item }}" }
`);
  assert.equal(result.status, "SUCCESS");
  assert.deepEqual(result.output, [
    { from_a: "x", item: "x" },
    { from_a: "y", item: "y" },
    { from_a: "z", item: "z" },
  ]);
  assert.equal(result.elapsedMs, 1005);
  assert.equal(result.tasks["each[1]/a"].status, "SUCCESS");
});

Deno.test("reference: on_timeout, a later sleep and a final task (defect 2)", async () => {
  const result = await evaluateYaml(`tasks:
  - id: w
    type: wait
    signal: go
    timeout: 1s
    on_timeout: remind
  - id: never
    use: tool(id=t)
  - id: remind
    use: tool(id=t)
    with: { n: 1, why: "{{ .error.code }}" }
  - id: nap
    type: sleep
    duration: 1s
  - id: end
    type: aggregate
    outputs: { done: true }
    final: true
`);
  assert.equal(result.status, "SUCCESS");
  assert.deepEqual(result.output, { done: true });
  assert.equal(result.tasks.w.code, "wait_timeout");
  assert.deepEqual(result.calls.map((c) => c.input), [{ n: 1, why: "wait_timeout" }]);
});

Deno.test("reference: signals at checkpoints; a throwing condition is a non-match (defect 3)", async () => {
  const result = await evaluateYaml(
    `tasks:
  - id: w
    type: wait
    signal: go
    condition: '{{ .signal.payload.ticket == "T1" }}'
  - id: after
    type: aggregate
    outputs: { got: "{{ .tasks.w.output.n }}" }
`,
    {},
    {
      w: [
        { kind: "signal", signal: "go", payload: { other: 1 }, broadcast: false },
        { kind: "signal", signal: "go", payload: { ticket: "T2" }, broadcast: true },
        { kind: "signal", signal: "go", payload: { ticket: "T1", n: 7 }, broadcast: false },
      ],
    },
  );
  assert.equal(result.status, "SUCCESS");
  assert.deepEqual(result.output, { got: 7 });
  assert.deepEqual(result.checkpoints.map((c) => c.waiting), [["w"]]);
});

Deno.test("reference: a broadcast must reach the root only while a wait listens that its time-out does not end", async () => {
  const ticket = (t: string): Action => ({
    kind: "signal",
    signal: "go",
    payload: { ticket: t },
    broadcast: true,
  });
  // Each item's wait gets the plan's broadcast; the first ends both waits, the second reaches none (seed 1034169).
  const items = await evaluateYaml(
    `tasks:
  - id: each
    type: collection
    items: [a, b]
    task:
      id: w
      type: wait
      signal: go
`,
    {},
    { w: [ticket("T1")] },
  );
  assert.equal(items.status, "SUCCESS");
  assert.deepEqual(items.checkpoints.map((c) => c.reaches), [[true, false]]);
  // A refused payload leaves the wait listening: the next broadcast must reach it too. A direct signal is no
  // broadcast.
  const refused = await evaluateYaml(
    `tasks:
  - id: w
    type: wait
    signal: go
    condition: '{{ .signal.payload.ticket == "T1" }}'
`,
    {},
    {
      w: [
        ticket("nope"),
        { kind: "signal", signal: "go", payload: { ticket: "no" }, broadcast: false },
        ticket("T1"),
      ],
    },
  );
  assert.deepEqual(refused.checkpoints.map((c) => c.reaches), [[true, false, true]]);
  // A wait that its time-out ends may have timed out on the engine before the harness sends anything to it.
  const timed = await evaluateYaml(
    `tasks:
  - id: w
    type: wait
    signal: go
    condition: '{{ .signal.payload.ticket == "T1" }}'
    timeout: 300ms
`,
    {},
    { w: [ticket("nope")] },
  );
  assert.equal(timed.status, "FAILED");
  assert.deepEqual(timed.checkpoints.map((c) => c.reaches), [[false]]);
});

Deno.test("reference: retries, race, fail_fast, cancel and the workflow timeout", async () => {
  let calls = 0;
  const flaky: ToolModel = (_t, input, attempt) => {
    calls++;
    const i = input as { fail?: number; ms?: number };
    if (attempt <= (i.fail ?? 0)) return { ok: false, code: "tool_threw", retryable: true, ms: 1 };
    return { ok: true, output: input, ms: i.ms ?? 1 };
  };
  const retried = await evaluateYaml(
    `tasks:
  - id: f
    use: tool(id=t)
    with: { fail: 2 }
    retry: { max_attempts: 3, backoff: { initial: 10ms, max: 50ms } }
`,
    {},
    {},
    flaky,
  );
  assert.equal(retried.status, "SUCCESS");
  assert.equal(calls, 3);

  const race = await evaluateYaml(
    `tasks:
  - id: fan
    type: parallel
    strategy: race
    tasks:
      - id: slow
        type: sleep
        duration: 15s
      - id: quick
        type: sleep
        duration: 1s
`,
  );
  assert.deepEqual(race.output, { quick: null });
  assert.equal(race.elapsedMs, 1000);
  // `slow` still ran when `quick` won: under crashes that order is the restarts' (cases.ts `unusable`).
  assert.deepEqual(race.decisions, [{ key: "fan", branch: "quick", atMs: 1000, stopped: 1 }]);
  const lastStanding = await evaluateYaml(
    `tasks:
  - id: fan
    type: parallel
    strategy: race
    tasks:
      - id: bad
        use: tool(id=t)
        with: { fail: 1 }
      - id: quick
        type: sleep
        duration: 1s
`,
    {},
    {},
    flaky,
  );
  assert.deepEqual(lastStanding.output, { quick: null });
  assert.deepEqual(lastStanding.decisions, [{ key: "fan", branch: "quick", atMs: 1000, stopped: 0 }]);

  const canceled = await evaluateYaml(
    `config: { timeout: 2s }
tasks:
  - id: w
    type: wait
    signal: go
  - id: after
    use: tool(id=t)
`,
    {},
    { w: [{ kind: "pause" }, { kind: "cancel", reason: "stop" }] },
  );
  assert.equal(canceled.status, "CANCELED");
  const timedOut = await evaluateYaml(`config: { timeout: 2s }
tasks:
  - id: w
    type: wait
    signal: go
`);
  assert.equal(timedOut.status, "TIMED_OUT");
  assert.equal(timedOut.elapsedMs, 2000);
});

Deno.test("reference: a retried composite's keys, what `.tasks` sees after containers, a failed collection", async () => {
  // The first attempt of `box` fails at `inner` (the tool fails on its first call), the second succeeds.
  let first = true;
  const flakyOnce: ToolModel = (_tool, input) => {
    const fail = first;
    first = false;
    return fail
      ? { ok: false, code: "tool_threw", retryable: false, ms: 5 }
      : { ok: true, output: input, ms: 5 };
  };
  const retried = await evaluateYaml(
    `outputs: { inner: "{{ .tasks.inner.output.n }}", fan: "{{ .tasks.b.status }}" }
tasks:
  - id: box
    type: composite
    retry: { max_attempts: 2, backoff: { initial: 10ms, max: 10ms } }
    tasks:
      - id: inner
        use: tool(id=t)
        with: { n: 1 }
  - id: fan
    type: parallel
    tasks:
      - id: b
        type: sleep
        duration: 10ms
`,
    {},
    {},
    flakyOnce,
  );
  assert.equal(retried.status, "SUCCESS");
  assert.equal(retried.tasks["box/inner"].status, "FAILED");
  assert.equal(retried.tasks["box#2/inner"].status, "SUCCESS");
  // Composite and parallel children are readable after their container, by the workflow's outputs too.
  assert.deepEqual(retried.output, { inner: 1, fan: "SUCCESS" });

  const failing: ToolModel = () => ({ ok: false, code: "tool_threw", retryable: false, ms: 5 });
  const collection = await evaluateYaml(
    `tasks:
  - id: each
    type: collection
    items: [a, b, c]
    max_workers: 1
    task:
      id: item
      use: tool(id=t)
      with: { v: "{{ .item }}" }
`,
    {},
    {},
    failing,
  );
  assert.equal(collection.status, "FAILED");
  // The first failed item stops the collection: no other item starts.
  assert.deepEqual(collection.calls.map((c) => c.input), [{ v: "a" }]);
});

Deno.test("reference: `if` must render true or false; a number fails the task (outside review F2)", async () => {
  const result = await evaluateYaml(`tasks:
  - { id: a, use: tool(id=t), with: { v: 1 } }
  - id: b
    use: tool(id=t)
    if: "{{ .tasks.a.output.v }}"
    on_error: { next: h }
  - { id: c, type: aggregate, outputs: { never: true }, final: true }
  - id: h
    type: aggregate
    outputs: { code: "{{ .error.code }}", bs: "{{ .tasks.b.status }}" }
`);
  assert.equal(result.status, "SUCCESS");
  assert.deepEqual(result.output, { code: "template_error", bs: "FAILED" });
});

/** A project of `main` (the given tasks) and `child`: a tool call after `childSleep` (outside review D1, D2). */
async function evaluateWithChild(tasks: string, childSleep = "8s") {
  const dir = await writeProject({
    "compozy.yaml": "name: ref\nworkflows:\n  - source: ./wf.yaml\n  - source: ./child.yaml\n",
    "wf.yaml": `id: main\n${tasks}`,
    "child.yaml": `id: child
tools:
  - id: t
    execute: ./t.ts
tasks:
  - { id: cs, type: sleep, duration: ${childSleep} }
  - { id: c2, use: tool(id=t), with: { tag: c2 } }
`,
    "t.ts": "export default (input: unknown) => input;\n",
  });
  try {
    return await evaluate(await loadProject(dir), "main", {}, { tools: echo });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("reference: a given-up sub-workflow task cancels its own child only (outside review D1)", async () => {
  const result = await evaluateWithChild(`tasks:
  - id: p
    type: parallel
    strategy: best_effort
    tasks:
      - { id: x, use: workflow(id=child), timeout: 2s }
      - { id: y, use: workflow(id=child) }
`);
  assert.equal(result.status, "SUCCESS");
  assert.equal(result.tasks["p/x"].code, "task_timeout");
  assert.equal(result.tasks["p/y"].status, "SUCCESS");
  assert.deepEqual(result.children.map((c) => [c.key, c.status]), [["p/x", "CANCELED"], ["p/y", "SUCCESS"]]);
  assert.equal(result.calls.length, 1, "only y's child calls its tool");

  const retried = await evaluateWithChild(`tasks:
  - id: r
    use: workflow(id=child)
    timeout: 2s
    retry: { max_attempts: 2, backoff: { initial: 0s, max: 0s } }
`);
  assert.equal(retried.status, "FAILED");
  assert.equal(retried.error?.code, "task_timeout");
  assert.equal(retried.elapsedMs, 4000);
  assert.deepEqual(retried.children.map((c) => c.status), ["CANCELED", "CANCELED"]);
});

Deno.test("reference: a parent's time-out or cancel ends its running child CANCELED (outside review D2)", async () => {
  const timed = await evaluateWithChild(`config: { timeout: 3s }
tasks:
  - id: p
    type: parallel
    tasks:
      - { id: sub, use: workflow(id=child) }
      - { id: nap, type: sleep, duration: 10s }
`);
  assert.equal(timed.status, "TIMED_OUT");
  assert.deepEqual(timed.children.map((c) => [c.key, c.status]), [["p/sub", "CANCELED"]]);
  assert.equal(timed.calls.length, 0);
  const ended = await evaluateWithChild(
    `config: { timeout: 3s }
tasks:
  - { id: sub, use: workflow(id=child) }
`,
    "1s",
  );
  assert.equal(ended.status, "SUCCESS");
  assert.deepEqual(ended.children.map((c) => c.status), ["SUCCESS"]);
});

Deno.test("reference: `.tasks` shows a decided race's and a fail_fast's canceled branches CANCELED", async () => {
  const status = (ids: string[]) => `{ ${ids.map((id) => `${id}: "{{ .tasks.${id}.status }}"`).join(", ")} }`;
  const race = await evaluateYaml(
    `outputs: ${status(["quick", "slow", "box", "first", "held"])}
tasks:
  - id: fan
    type: parallel
    strategy: race
    tasks:
      - { id: quick, type: sleep, duration: 1s }
      - { id: slow, type: sleep, duration: 15s }
      - id: box
        type: composite
        tasks:
          - { id: first, type: sleep, duration: 10ms }
          - { id: held, type: sleep, duration: 15s }
`,
  );
  assert.deepEqual(race.output, {
    quick: "SUCCESS",
    slow: "CANCELED",
    box: "CANCELED",
    first: "SUCCESS",
    held: "CANCELED",
  });
  const failing: ToolModel = () => ({ ok: false, code: "tool_threw", retryable: false, ms: 5 });
  const failFast = await evaluateYaml(
    `outputs: ${status(["bad", "slow"])}
tasks:
  - id: fan
    type: parallel
    strategy: fail_fast
    tasks:
      - { id: bad, use: tool(id=t) }
      - { id: slow, type: sleep, duration: 15s }
    on_error: { next: after }
  - { id: after, type: sleep, duration: 1ms }
`,
    {},
    {},
    failing,
  );
  assert.deepEqual(failFast.output, { bad: "FAILED", slow: "CANCELED" });
});

Deno.test("reference: a container reached through `on_error` publishes its children to the tasks after it", async () => {
  const failing: ToolModel = (_t, input) =>
    (input as { fail?: boolean }).fail
      ? { ok: false, code: "tool_threw", retryable: false, ms: 5 }
      : { ok: true, output: input, ms: 5 };
  // Seed 1046057: `.tasks.inner` read "none" after `box`, whose scope took the `.error` of `bad` (the engine
  // read SUCCESS).
  const result = await evaluateYaml(
    `outputs: { inner: "{{ .tasks.inner.status | default(\\"none\\") }}", code: "{{ .tasks.inner.output.code }}" }
tasks:
  - id: bad
    use: tool(id=t)
    with: { fail: true }
    on_error: { next: box }
  - id: box
    type: composite
    tasks:
      - { id: inner, use: tool(id=t), with: { code: "{{ .error.code }}" } }
`,
    {},
    {},
    failing,
  );
  assert.deepEqual(result.output, { inner: "SUCCESS", code: "tool_threw" });
});
