/**
 * `.tasks` shows the tasks a decided race or a fail_fast parallel canceled, as `CANCELED` (docs/yaml-reference.md,
 * "What `.tasks` sees"): they were left out, so a later task or the workflow's `outputs` reading
 * `.tasks.<loser>.status` found nothing there, where the execution's state listed the task CANCELED. Each
 * workflow reads the statuses twice: in the task right after the parallel (the live run) and in its `outputs`,
 * rendered after a park (a replay from the history). Real nats-server, real engine, scripted tools.
 */
import assert from "node:assert/strict";
import { type BusMessage, PublishError, subjectOf } from "../../pkg/nats/mod.ts";
import { TaskExecutionSuccessSchema } from "../../pkg/pb/mod.ts";
import { scriptedRuntime, startEngineHarness } from "../support/engine.ts";

const STATUSES = ["quick", "hold", "box", "first", "held"];
const read = (ids: string[]) =>
  `{ ${ids.map((id) => `${id}: "{{ .tasks.${id}.status | default(\\"none\\") }}"`).join(", ")} }`;

const FILES = {
  "compozy.yaml":
    "name: view\nworkflows:\n  - source: ./race.yaml\n  - source: ./ff.yaml\n  - source: ./retried.yaml\n" +
    "  - source: ./lost.yaml\n",
  "t.ts": "export default (input: unknown) => input;\n",
  "race.yaml": `id: race
tools:
  - { id: echo, execute: ./t.ts }
tasks:
  - id: r
    type: parallel
    strategy: race
    tasks:
      - { id: quick, type: wait, signal: go }
      - { id: hold, type: wait, signal: never }
      - id: box
        type: composite
        tasks:
          - { id: first, use: tool(id=echo), with: { v: 1 } }
          - { id: held, type: wait, signal: never }
  - id: seen
    type: aggregate
    outputs: ${read(STATUSES)}
  - { id: park, type: wait, signal: next }
outputs:
  seen: "{{ .tasks.seen.output }}"
  replayed: ${read(STATUSES)}
`,
  "ff.yaml": `id: ff
tools:
  - { id: echo, execute: ./t.ts }
tasks:
  - id: f
    type: parallel
    strategy: fail_fast
    tasks:
      - { id: bad, type: wait, signal: go, timeout: 100ms }
      - { id: hold, type: wait, signal: never }
    on_error: { next: seen }
  - id: seen
    type: aggregate
    outputs: ${read(["bad", "hold"])}
  - { id: park, type: wait, signal: next }
outputs:
  seen: "{{ .tasks.seen.output }}"
  replayed: ${read(["bad", "hold"])}
`,
  // `lx` (tool `once`) succeeds on its first call and hangs on the next: `lbox`'s attempt 1 fails at `lz`, its
  // attempt 2 runs `lx` alone until the race is decided.
  "lost.yaml": `id: lost
tools:
  - { id: echo, execute: ./t.ts }
  - { id: once, execute: ./t.ts }
  - { id: boom, execute: ./t.ts }
tasks:
  - id: lr
    type: parallel
    strategy: race
    tasks:
      - { id: lq, type: wait, signal: go }
      - id: lbox
        type: composite
        retry: { max_attempts: 2, backoff: { initial: 10ms, max: 10ms } }
        tasks:
          - { id: lx, use: tool(id=once) }
          - { id: ly, use: tool(id=echo), with: { v: 1 } }
          - { id: lz, use: tool(id=boom) }
  - id: seen
    type: aggregate
    outputs: ${read(["lbox", "lx", "ly", "lz"])}
`,
  // `flip` succeeds on its first call and fails after: attempt 1 of `box` fails at `c`, attempt 2 at `a`.
  "retried.yaml": `id: retried
tools:
  - { id: echo, execute: ./t.ts }
  - { id: flip, execute: ./t.ts }
  - { id: boom, execute: ./t.ts }
tasks:
  - id: box
    type: composite
    retry: { max_attempts: 2, backoff: { initial: 10ms, max: 10ms } }
    tasks:
      - { id: a, use: tool(id=flip) }
      - { id: b, use: tool(id=echo), with: { v: 1 } }
      - { id: c, use: tool(id=boom) }
    on_error: { next: seen }
  - id: seen
    type: aggregate
    outputs: ${read(["a", "b", "c"])}
  - { id: park, type: wait, signal: next }
outputs:
  seen: "{{ .tasks.seen.output }}"
  replayed: ${read(["a", "b", "c"])}
`,
};

Deno.test({
  name: ".tasks shows the branches a race or a fail_fast canceled, live and replayed",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(t) {
    const h = await startEngineHarness(FILES);
    let flips = 0;
    let onces = 0;
    const runtime = scriptedRuntime(h.bus, {
      once: () => ++onces > 1 ? new Promise(() => {}) : {},
      echo: (input) => input,
      flip: () => {
        if (++flips > 1) throw new Error("flip");
        return {};
      },
      boom: () => {
        throw new Error("boom");
      },
    });
    const { client } = h.engine;
    try {
      await t.step("a race's losers, a composite's child among them", async () => {
        const { execId } = await client.trigger("race", {});
        // The composite's first child has ended and its second waits: the race is then decided by `go`.
        await waitForTask(h, execId, "r/box/held", "WAITING");
        await client.signal(execId, "go", {});
        await waitForTask(h, execId, "park", "WAITING");
        await client.signal(execId, "next", {});
        const state = await client.waitForEnd(execId, 15_000);
        assert.equal(state.status, "SUCCESS", JSON.stringify(state.error));
        const want = {
          quick: "SUCCESS",
          hold: "CANCELED",
          box: "CANCELED",
          first: "SUCCESS",
          held: "CANCELED",
        };
        assert.deepEqual(state.output, { seen: want, replayed: want });
      });

      await t.step("a fail_fast's canceled sibling", async () => {
        const { execId } = await client.trigger("ff", {});
        await waitForTask(h, execId, "park", "WAITING");
        await client.signal(execId, "next", {});
        const state = await client.waitForEnd(execId, 15_000);
        assert.equal(state.status, "SUCCESS", JSON.stringify(state.error));
        const want = { bad: "FAILED", hold: "CANCELED" };
        assert.deepEqual(state.output, { seen: want, replayed: want });
      });

      await t.step("a retried composite's children of each attempt, the later over the earlier", async () => {
        const { execId } = await client.trigger("retried", {});
        await waitForTask(h, execId, "park", "WAITING");
        await client.signal(execId, "next", {});
        const state = await client.waitForEnd(execId, 15_000);
        assert.equal(state.status, "SUCCESS", JSON.stringify(state.error));
        // `b` and `c` ran in attempt 1 only: a replay restored the last attempt's children alone, and one that
        // went on with attempt 2 after the back-off (the execution parks in it) restored none of attempt 1's.
        const want = { a: "FAILED", b: "SUCCESS", c: "FAILED" };
        assert.deepEqual(state.output, { seen: want, replayed: want });
      });

      await t.step(
        "a retried loser given up on the replay shows its earlier attempt's children",
        async () => {
          const publish = h.bus.publish.bind(h.bus);
          let refused = false;
          h.bus.publish = async (message: BusMessage, options) => {
            const result = await publish(message, options);
            if (
              !refused && message.$typeName === TaskExecutionSuccessSchema.typeName &&
              (message as { task?: { id?: string } }).task?.id === "lr/lq"
            ) {
              // Stored, but the engine is told it could not be: it gives the execution up before it gives the
              // losing branch up, and the replay gives it up (giveUpReplayed).
              refused = true;
              throw new PublishError("NATS out of reach (test)", subjectOf(message), 1);
            }
            return result;
          };
          try {
            const { execId } = await client.trigger("lost", {});
            await waitForTask(h, execId, "lr/lbox#2/lx", "RUNNING");
            await client.signal(execId, "go", {});
            const state = await client.waitForEnd(execId, 15_000);
            assert.equal(state.status, "SUCCESS", JSON.stringify(state.error));
            assert.ok(refused, "the winner's success was refused once");
            // Before the fix `ly` and `lz`, which ran in attempt 1 only, read "none".
            assert.deepEqual(state.output, { lbox: "CANCELED", lx: "CANCELED", ly: "SUCCESS", lz: "FAILED" });
          } finally {
            h.bus.publish = publish;
          }
        },
      );
    } finally {
      runtime.stop();
      await h.close();
    }
  },
});

async function waitForTask(
  h: Awaited<ReturnType<typeof startEngineHarness>>,
  execId: string,
  taskId: string,
  status: string,
): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    const state = await h.engine.client.get(execId);
    if (state?.tasks.find((x) => x.task_id === taskId)?.status === status) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`task ${taskId} of ${execId} did not reach ${status}`);
}
