/**
 * Issue 9, defect 8: a task re-run after its engine was SIGKILLed reports the next attempt, with the same
 * task execution id (a tool keyed on `ctx.taskExecId` needs the true attempt count).
 */
import assert from "node:assert/strict";
import { startCrashStack } from "../support/engine_process.ts";

Deno.test({
  name: "8: a re-run after a crash reports the next attempt with the same task execution id",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const calls: Array<{ attempt: number; taskExecId: string }> = [];
    let firstCall!: () => void;
    const firstCalled = new Promise<void>((r) => firstCall = r);
    const stack = await startCrashStack({
      "compozy.yaml": "name: crash\nworkflows:\n  - source: ./wf.yaml\n",
      "wf.yaml":
        "id: main\ntools:\n  - id: work\n    execute: ./t.ts\ntasks:\n  - id: a\n    use: tool(id=work)\n",
      "t.ts": "export default (input: unknown) => input;\n",
    }, {
      work: async (_input, call) => {
        calls.push({ attempt: call.attempt, taskExecId: call.task!.execId });
        if (calls.length === 1) {
          firstCall();
          await new Promise(() => {}); // The engine dies while this call runs.
        }
        return { attempt: call.attempt };
      },
    }, { instanceId: "e" });
    const { client } = stack;
    try {
      const { execId } = await client.trigger("main", {});
      await firstCalled;
      await stack.killEngine();
      stack.restartEngine();
      const state = await client.waitForEnd(execId, 30_000);
      assert.equal(state.status, "SUCCESS", JSON.stringify(state.error));
      assert.equal(calls.length, 2);
      assert.equal(calls[1].taskExecId, calls[0].taskExecId);
      assert.deepEqual(calls.map((c) => c.attempt), [1, 2]);
      assert.deepEqual(state.output, { attempt: 2 });
    } finally {
      await stack.close();
    }
  },
});
