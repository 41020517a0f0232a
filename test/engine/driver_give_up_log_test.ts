/**
 * A driver that gives an execution up because its end could not be recorded says why in the log (leftover of
 * issue 9: `failWorkflow(...).catch(() => this.abandon())` dropped the error, so an execution that came
 * back later, or never, left no trace of the cause). Real nats-server, real engine; the workflow.failed
 * publish fails once, the command comes back and the replay records the failure.
 */
import assert from "node:assert/strict";
import type { BusMessage } from "../../pkg/nats/mod.ts";
import { WorkflowExecutionFailedSchema } from "../../pkg/pb/mod.ts";
import { scriptedRuntime, startEngineHarness } from "../support/engine.ts";
import { projectWith } from "../support/flows.ts";
import { withCapturedLog } from "../support/log_capture.ts";

// The workflow's outputs fail to render after its last task: the program itself throws (not a task).
const WF = `tasks:
  - { id: a, use: tool(id=echo), with: { v: 1 } }
outputs:
  x: "{{ .output.v.deep.er }}"
`;

Deno.test({
  name: "a workflow failure that cannot be recorded is logged with its cause before the driver gives up",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await withCapturedLog(async (log) => {
      const h = await startEngineHarness(projectWith(WF), { ackWaitMs: 1_000 });
      const runtime = scriptedRuntime(h.bus, { echo: (input) => input });
      try {
        let refused = 0;
        const publish = h.bus.publish.bind(h.bus);
        h.bus.publish = async (message: BusMessage, options) => {
          if (message.$typeName === WorkflowExecutionFailedSchema.typeName && refused++ === 0) {
            throw new Error("stream refused the write (test)");
          }
          return await publish(message, options);
        };
        const { execId } = await h.engine.client.trigger("main", {});
        const state = await h.engine.client.waitForEnd(execId, 30_000);
        assert.equal(state.status, "FAILED", JSON.stringify(state));
        assert.equal(state.error?.code, "template_error");
        assert.ok(refused >= 2, `workflow.failed published ${refused} times`);
        const logged = log.records(execId, "stream refused the write (test)");
        assert.equal(logged.length, 1, log.text());
        assert.equal(logged[0].level, "error", JSON.stringify(logged[0]));
        // The program's own failure, which was not recorded, is named too.
        assert.ok(logged[0].message.includes("outputs.x"), logged[0].message);
      } finally {
        runtime.stop();
        await h.close();
      }
    });
  },
});
