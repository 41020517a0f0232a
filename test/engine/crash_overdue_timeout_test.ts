/**
 * A workflow whose `config.timeout` passed while its engine was down is timed out before anything of it runs
 * again (outside review B5): the replay recorded a new attempt of the open task and sent its call to the
 * runtime, and the overdue deadline fired only after, so the call was taken after the task's cancel and its
 * failure recorded after the execution's end. Real nats-server, real engine process.
 */
import assert from "node:assert/strict";
import { startCrashStack } from "../support/engine_process.ts";

Deno.test({
  name: "B5: an execution whose deadline passed while its engine was down times out without a new attempt",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const calls: Array<{ task: string; attempt: number }> = [];
    let firstCall!: () => void;
    const firstCalled = new Promise<void>((r) => firstCall = r);
    const stack = await startCrashStack({
      "compozy.yaml": "name: crash\nworkflows:\n  - source: ./wf.yaml\n",
      "wf.yaml": `id: main
config: { timeout: 3s }
tools:
  - id: work
    execute: ./t.ts
tasks:
  - id: long
    use: tool(id=work)
  - id: after
    use: tool(id=work)
`,
      "t.ts": "export default (input: unknown) => input;\n",
    }, {
      work: async (input, call) => {
        calls.push({ task: call.task!.id, attempt: call.attempt });
        if (calls.length === 1) {
          firstCall();
          await new Promise(() => {}); // The engine dies while the call runs.
        }
        return input;
      },
    }, { instanceId: "e" });
    const { client } = stack;
    try {
      const { execId } = await client.trigger("main", {});
      await firstCalled;
      await stack.killEngine();
      // Down past the deadline (3 s from the start).
      await new Promise((r) => setTimeout(r, 3_500));
      stack.restartEngine();
      const state = await client.waitForEnd(execId, 30_000);
      assert.equal(state.status, "TIMED_OUT", JSON.stringify(state));
      const long = state.tasks.find((t) => t.task_id === "long");
      assert.equal(long?.status, "CANCELED", JSON.stringify(long));
      // Before the fix: a second attempt of `long`, its call sent after the deadline.
      assert.deepEqual(calls, [{ task: "long", attempt: 1 }]);
      const events = await client.events(execId);
      const types = events.map((e) => e.type);
      const end = types.indexOf("workflow.timed_out");
      assert.ok(end >= 0, types.join(", "));
      assert.deepEqual(types.slice(end + 1), [], `nothing after the end: ${types.join(", ")}`);
      assert.equal(types.filter((t) => t === "task.started").length, 1, types.join(", "));
    } finally {
      await stack.close();
    }
  },
});
