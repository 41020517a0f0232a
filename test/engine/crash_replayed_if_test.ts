/**
 * A task whose attempt had started when its engine was SIGKILLed runs again after the crash, whatever its `if`
 * renders now (outside review B1): the replay rendered `if` again, and one that read the clock, `.env` or a
 * definition changed meanwhile recorded the task SKIPPED though its tool had run, and the flow after it took
 * the "skipped" path. Its start shows the condition held. Real nats-server, real engine process.
 */
import assert from "node:assert/strict";
import { startCrashStack } from "../support/engine_process.ts";

Deno.test({
  name: "B1: a started task's if is not rendered again by the replay after a crash",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const calls: Array<{ task: string; attempt: number }> = [];
    let firstCall!: () => void;
    const firstCalled = new Promise<void>((r) => firstCall = r);
    const stack = await startCrashStack({
      "compozy.yaml": "name: crash\nworkflows:\n  - source: ./wf.yaml\n",
      "wf.yaml": `id: main
tools:
  - id: work
    execute: ./t.ts
tasks:
  - id: t2
    if: '{{ .env.B1_GO == "yes" }}'
    use: tool(id=work)
  - id: t3
    use: tool(id=work)
    with: { saw: "{{ .tasks.t2.status }}" }
`,
      "t.ts": "export default (input: unknown) => input;\n",
    }, {
      work: async (input, call) => {
        calls.push({ task: call.task!.id, attempt: call.attempt });
        if (calls.length === 1) {
          firstCall();
          await new Promise(() => {}); // The engine dies while t2's call runs.
        }
        return input;
      },
    }, { instanceId: "e", env: { B1_GO: "yes" } });
    const { client } = stack;
    try {
      const { execId } = await client.trigger("main", {});
      await firstCalled;
      await stack.killEngine();
      // The condition renders false from now on.
      stack.restartEngine({ env: { B1_GO: "no" } });
      const state = await client.waitForEnd(execId, 30_000);
      assert.equal(state.status, "SUCCESS", JSON.stringify(state.error));
      const t2 = state.tasks.find((t) => t.task_id === "t2");
      // Before the fix: t2 SKIPPED (attempt 1) though its call had run, and t3 saw SKIPPED.
      assert.equal(t2?.status, "SUCCESS", JSON.stringify(t2));
      assert.deepEqual(calls, [{ task: "t2", attempt: 1 }, { task: "t2", attempt: 2 }, {
        task: "t3",
        attempt: 1,
      }]);
      assert.deepEqual(state.output, { saw: "SUCCESS" });
    } finally {
      await stack.close();
    }
  },
});
