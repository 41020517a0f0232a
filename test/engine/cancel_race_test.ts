/**
 * A cancel that arrives while a task's success is being stored (outside review E4: 1 of 24 cancels racing a
 * task's end). The end took the task as open and recorded `task.canceled` after its `task.success`, so the
 * history held two ends of one task. Real nats-server, real engine; the success write is held back to make the
 * race certain.
 */
import assert from "node:assert/strict";
import type { BusMessage } from "../../pkg/nats/mod.ts";
import { TaskExecutionSuccessSchema } from "../../pkg/pb/mod.ts";
import { withEngine } from "../support/flows.ts";

Deno.test({
  name: "E4: a cancel while a task's success is being stored records no task.canceled after it",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const wf = "tasks:\n  - { id: a, use: tool(id=echo) }\n  - { id: b, use: tool(id=echo) }\n";
    await withEngine(wf, async (h) => {
      let execId = "";
      let canceling: Promise<void> | undefined;
      const publish = h.bus.publish.bind(h.bus);
      h.bus.publish = async (message: BusMessage, options) => {
        const success = message.$typeName === TaskExecutionSuccessSchema.typeName &&
          (message as { task?: { id?: string } }).task?.id === "a";
        if (success && !canceling) {
          // The cancel is taken while a's success is still on its way to the stream.
          canceling = h.engine.client.cancel(execId, "racing");
          await canceling;
          await new Promise((r) => setTimeout(r, 300));
        }
        return await publish(message, options);
      };
      execId = (await h.engine.client.trigger("main", {})).execId;
      const state = await h.engine.client.waitForEnd(execId, 15_000);
      assert.equal(state.status, "CANCELED");
      const ends = (await h.engine.client.events(execId))
        .filter((e) => (e.data as { task?: { id?: string } }).task?.id === "a")
        .filter((e) => ["task.success", "task.canceled"].includes(e.type))
        .map((e) => e.type);
      // Before the fix: ["task.success", "task.canceled"].
      assert.deepEqual(ends, ["task.success"]);
    });
  },
});
