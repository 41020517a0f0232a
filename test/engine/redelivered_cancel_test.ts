/**
 * A command delivered again while its first delivery still ends the execution is not acknowledged before
 * that end is stored (model finding G10's rest, seed 90033 at load 30): a child's cancel took its driver into
 * its end, the engine's event loop stalled past the ack wait, and nats-server delivered the cancel again. The
 * copy met the driver already ending and was acknowledged at once, which took the message out of the work
 * queue; the end could then not be written (the lease ran out at that load) and the driver was given up, so the
 * first delivery's nak found nothing to send back. Nothing drove the child again: it ran on (its sleep's timer
 * woke it) or stayed waiting, and every later cancel, the parent's end included, was dropped by nats-server as
 * a duplicate of the first (one message id per child). Real nats-server and engine; the stall and the failed
 * write are injected.
 */
import assert from "node:assert/strict";
import { type BusMessage, PublishError } from "../../pkg/nats/mod.ts";
import { WorkflowExecutionCanceledSchema } from "../../pkg/pb/mod.ts";
import { projectWith, waitForStatus } from "../support/flows.ts";
import { startEngineHarness } from "../support/engine.ts";
import { until } from "../support/until.ts";

const ACK_WAIT_MS = 600;

Deno.test({
  name: "a cancel delivered again during its end is not acknowledged before the end is stored",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const h = await startEngineHarness(
      projectWith("tasks:\n  - { id: w, type: wait, signal: go, timeout: 1h }\n"),
      { ackWaitMs: ACK_WAIT_MS },
    );
    try {
      const { client } = h.engine;
      const { execId } = await client.trigger("main", {});
      await waitForStatus(h, execId, "WAITING");
      await until(() => Promise.resolve(h.engine.activeExecutions() === 0));
      let held = 0;
      const publish = h.bus.publish.bind(h.bus);
      h.bus.publish = async (message: BusMessage, options) => {
        if (message.$typeName === WorkflowExecutionCanceledSchema.typeName && held++ === 0) {
          // The event loop stalls past the ack wait (no heartbeat goes out): nats-server delivers the cancel
          // again, and the copy is handled while this end is still on its way.
          const stalledUntil = Date.now() + 4 * ACK_WAIT_MS;
          while (Date.now() < stalledUntil) { /* a stalled engine */ }
          await new Promise((r) => setTimeout(r, 2 * ACK_WAIT_MS));
          // Then the end cannot be written (a lease that ran out at load): the driver is given up.
          throw new PublishError("the test holds the end back", "workflow.canceled", 1);
        }
        return await publish(message, options);
      };
      await client.cancel(execId, "stop");
      // Before the fix: RUNNING for good (the cancel was acknowledged by its copy, the end never stored).
      const state = await client.waitForEnd(execId, 20_000);
      assert.equal(state.status, "CANCELED");
      assert.ok(held >= 2, `the end was written again after it was given up (${held} tries)`);
    } finally {
      await h.close();
    }
  },
});
