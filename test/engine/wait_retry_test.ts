/**
 * `retry` on a `wait` (outside review B9): docs/engine.md says `retry` applies to every task type, and a wait's
 * time-out was the one failure it ignored (one wait, FAILED wait_timeout, attempts 1). A timed-out wait with
 * attempts left now waits again after its back-off; `on_timeout` applies after the last. Real nats-server,
 * real engine.
 */
import assert from "node:assert/strict";
import { withEngine } from "../support/flows.ts";
import { until } from "../support/until.ts";

const RETRY = "retry: { max_attempts: 2, backoff: { initial: 50ms, max: 50ms, factor: 1 } }";

Deno.test("a timed-out wait with attempts left waits again; the last time-out fails it", async () => {
  await withEngine(
    `tasks:\n  - { id: w, type: wait, signal: go, timeout: 300ms, ${RETRY} }\n`,
    async (h) => {
      const { client } = h.engine;
      const { execId } = await client.trigger("main", {});
      const state = await client.waitForEnd(execId, 20_000);
      const history = (await client.events(execId)).map((e) => e.type);
      assert.equal(state.status, "FAILED", history.join(", "));
      assert.equal(state.error?.code, "wait_timeout");
      assert.equal(state.tasks.find((t) => t.task_id === "w")?.attempts, 2, history.join(", "));
      assert.equal(history.filter((t) => t === "task.waiting_started").length, 2, history.join(", "));
      assert.equal(history.filter((t) => t === "task.retry_scheduled").length, 1, history.join(", "));
    },
  );
});

Deno.test("a signal in a retried wait's second attempt is taken; on_timeout applies after the last", async () => {
  await withEngine(
    `tasks:
  - { id: w, type: wait, signal: go, timeout: 3s, ${RETRY}, on_timeout: late }
  - { id: ok, type: aggregate, outputs: { got: "{{ .tasks.w.output.n }}" }, final: true }
  - { id: late, type: aggregate, outputs: { late: true } }
`,
    async (h) => {
      const { client } = h.engine;
      const { execId } = await client.trigger("main", {});
      await until(async () =>
        (await client.events(execId)).filter((e) => e.type === "task.waiting_started").length === 2
      );
      // The second attempt waits afresh: the first one's time-out is not its error (brk-eng3 E3: the task
      // read WAITING, then SUCCESS, with error wait_timeout).
      const taskW = async () => (await client.get(execId))?.tasks.find((t) => t.task_id === "w");
      await until(async () => (await taskW())?.status === "WAITING");
      assert.equal((await taskW())?.error, null);
      await client.signal(execId, "go", { n: 3 });
      const state = await client.waitForEnd(execId, 20_000);
      assert.equal(state.status, "SUCCESS", JSON.stringify(state.error));
      assert.deepEqual(state.output, { got: 3 });
      const w = state.tasks.find((t) => t.task_id === "w");
      assert.deepEqual([w?.status, w?.attempts, w?.error], ["SUCCESS", 2, null]);
      const second = await client.trigger("main", {});
      const timedOut = await client.waitForEnd(second.execId, 20_000);
      assert.deepEqual(timedOut.output, { late: true });
    },
  );
});
