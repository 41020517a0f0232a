/**
 * Found by the crash fuzzer (seed 31670 of `deno task fuzz-engine --crashes --seed 31564`): a task's
 * time-out that is due when its engine comes back after a SIGKILL must still fail the attempt, even while
 * another branch of the replay runs a tool call. Timers due while the engine was down came back late, the
 * task's sleep ended first, and the task succeeded long after its time-out.
 */
import assert from "node:assert/strict";
import { startCrashStack } from "../support/engine_process.ts";
import { until } from "../support/until.ts";

const WORKFLOW = `id: main
tools:
  - id: slow
    execute: ./t.ts
tasks:
  - id: par
    type: parallel
    strategy: fail_fast
    tasks:
      - id: call
        use: tool(id=slow)
      - id: nap
        type: sleep
        duration: 4s
        timeout: 300ms
`;

Deno.test({
  name: "a task time-out due while its engine was down fails the attempt, a call of the replay running",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const attempts: number[] = [];
    // A long ack wait: what the killed engine held (its command, and likely the time-out its pending pull
    // requests took) comes back only after the sleep's end, which is then the first wake-up the restarted
    // engine gets (in the fuzz run, with a 1 s ack wait, that order was chance).
    const stack = await startCrashStack({
      "compozy.yaml": "name: crash-timeout\nworkflows:\n  - source: ./wf.yaml\n",
      "wf.yaml": WORKFLOW,
      "t.ts": "export default (input: unknown) => input;\n",
    }, {
      // The first call dies with its engine; the re-run (attempt 2) keeps the replay busy for 15 s, far
      // beyond the sleep's 4 s.
      slow: async (_input, call) => {
        attempts.push(call.attempt);
        await new Promise((r) => setTimeout(r, call.attempt === 1 ? 60_000 : 15_000));
        return { attempt: call.attempt };
      },
    }, { instanceId: "e", ackWaitMs: 60_000 });
    const { client } = stack;
    try {
      const { execId } = await client.trigger("main", {});
      // Killed once the sleep is stored (its time-out timer is stored before it) and the call runs.
      await until(async () =>
        attempts.length > 0 &&
        (await client.events(execId)).some((e) => e.type === "task.waiting_started")
      );
      await stack.killEngine();
      const killedAt = Date.now();
      // Back after the time-out was due (300 ms), well before the sleep's end (4 s).
      await new Promise((r) => setTimeout(r, 1_000));
      stack.restartEngine();
      const state = await client.waitForEnd(execId, 60_000);
      const nap = state.tasks.find((t) => t.task_id === "par/nap");
      const history = (await client.events(execId)).map((e) => `${e.type} ${Date.parse(e.time) - killedAt}`);
      assert.equal(nap?.status, "FAILED", `nap: ${JSON.stringify(nap)}\n${history.join("\n")}`);
      assert.equal(nap?.error?.code, "task_timeout");
      assert.equal(state.status, "FAILED");
      assert.equal(state.error?.code, "task_timeout");
    } finally {
      await stack.close();
    }
  },
});
