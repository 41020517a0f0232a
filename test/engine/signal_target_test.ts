/**
 * A `signal` task whose `target` renders to something that is not an execution id (outside review B4): `*`
 * and `>` failed with `internal_error` "invalid key: *" (a KV key error, naming neither the task nor the
 * field), and a target with a dot "succeeded" with `delivered: 0`. Now each fails the task `invalid_target`,
 * naming the task, the field and the value. Real nats-server, real engine.
 */
import assert from "node:assert/strict";
import { run, withEngine } from "../support/flows.ts";

const SEND = `tasks:
  - id: sg
    type: signal
    signal: { id: go, payload: { x: 1 } }
    target: "{{ .workflow.input.target }}"
`;

Deno.test("a signal task whose target renders to a non-id fails invalid_target, naming the task and field", async () => {
  await withEngine(SEND, async (h) => {
    for (const target of ["*", ">", "01a23c45-7f2a-7000-a73d-1d35ef6574d8.x", "a b", ""]) {
      const state = await run(h, { target });
      assert.equal(state.status, "FAILED", `${target}: ${JSON.stringify(state)}`);
      const sg = state.tasks.find((t) => t.task_id === "sg");
      assert.equal(sg?.error?.code, "invalid_target", `${target}: ${JSON.stringify(sg?.error)}`);
      assert.match(sg!.error!.message, /task 'sg', field 'target'/);
      assert.deepEqual(
        (sg!.error as { details?: unknown }).details,
        { task_id: "sg", field: "target", value: target },
      );
    }
    // A well-formed id with no execution behind it is no error: nothing waited for the signal.
    const state = await run(h, { target: "01a23c45-7f2a-7000-a73d-1d35ef6574d8" });
    assert.equal(state.status, "SUCCESS", JSON.stringify(state.error));
    assert.deepEqual(state.output, { signal: "go", delivered: 0 });
  });
});

Deno.test("a signal task whose target has ended delivers nothing: delivered 0 (outside review D4: 1)", async () => {
  await withEngine(SEND, async (h) => {
    // An execution of this very workflow that ended (it sent its signal to nobody).
    const ended = await run(h, { target: "01a23c45-7f2a-7000-a73d-1d35ef6574d8" });
    assert.equal(ended.status, "SUCCESS", JSON.stringify(ended.error));
    const state = await run(h, { target: ended.exec_id });
    assert.equal(state.status, "SUCCESS", JSON.stringify(state.error));
    assert.deepEqual(state.output, { signal: "go", delivered: 0 });
  });
});

Deno.test("a broadcast signal task reaches a wait of its own execution that started just before it", async () => {
  // Outside review 2026-12-05 O1: the broadcast looked waits up in the compozy_waiting index only, which the
  // state manager writes after it folds `task.waiting_started`, so a wait of the same execution started a few
  // milliseconds before (here: while one tool call ran) was missed: delivered 0, and the wait timed out.
  const wf = `tasks:
  - id: p
    type: parallel
    tasks:
      - { id: w, type: wait, signal: go, timeout: 5s }
      - id: c
        type: composite
        tasks:
          - { id: e, use: tool(id=echo), with: { v: 1 } }
          - { id: s, type: signal, signal: { id: go, payload: { n: 1 } } }
`;
  await withEngine(wf, async (h) => {
    for (let i = 0; i < 5; i++) {
      const state = await run(h, {}, 20_000);
      assert.equal(state.status, "SUCCESS", JSON.stringify(state.error));
      const s = state.tasks.find((t) => t.task_id === "p/c/s");
      const w = state.tasks.find((t) => t.task_id === "p/w");
      assert.deepEqual(s?.output, { signal: "go", delivered: 1 });
      assert.equal(w?.status, "SUCCESS");
    }
  });
});

Deno.test("a signal task targeting its own execution ends a sibling wait that starts at the same moment", async () => {
  // Without `target` the broadcast goes by the index of waits, which the state manager writes a moment after
  // the wait starts, and may find none (docs/engine.md, Signals; outside review brk-eng3 O1).
  await withEngine(
    `tasks:
  - id: p
    type: parallel
    tasks:
      - { id: w, type: wait, signal: go, timeout: 10s }
      - { id: s, type: signal, target: "{{ .workflow.exec_id }}", signal: { id: go, payload: { n: 2 } } }
`,
    async (h) => {
      for (let i = 0; i < 3; i++) {
        const state = await run(h);
        assert.equal(state.status, "SUCCESS", JSON.stringify(state.error));
        assert.deepEqual(state.output, { w: { n: 2 }, s: { signal: "go", delivered: 1 } });
      }
    },
  );
});
