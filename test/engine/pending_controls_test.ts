/**
 * removeApplied (pending_controls.ts) on a real nats-server: a pending resume applied by an activation may be
 * acknowledged by its own handler (given the activated driver) before the activation removes it. That was taken
 * for a failure and the driver given up after it had recorded its signal (finding G9's second cause).
 */
import assert from "node:assert/strict";
import { create } from "@bufbuild/protobuf";
import { jetstreamManager } from "@nats-io/jetstream";
import { removeApplied } from "../../engine/domain/workflow/pending_controls.ts";
import { Bus, connectNats, provisionJetStream, STREAMS } from "../../pkg/nats/mod.ts";
import { WorkflowResumeSchema } from "../../pkg/pb/mod.ts";
import { startTestNats } from "../support/nats.ts";

Deno.test("removeApplied takes a control its handler acknowledged meanwhile for removed", async () => {
  const nats = await startTestNats();
  const nc = await connectNats(nats.url, { name: "pending-controls-test" });
  try {
    await provisionJetStream(nc);
    const bus = new Bus(nc, { source: "test" });
    const execId = "01a23c45-7f2a-7000-a73d-1d35ef6574d8";
    const ack = await bus.publish(create(WorkflowResumeSchema, {
      metadata: bus.metadata(execId),
      workflow: { id: "main", execId },
    }));
    const jsm = await jetstreamManager(nc);
    // Gone from the work queue, as an acknowledged command is.
    await jsm.streams.deleteMessage(STREAMS.workflowCommands, ack.seq, false);
    await removeApplied(bus.js, [ack.seq]);
    // A removal that fails for another reason (no connection) still says so.
    await nc.close();
    await assert.rejects(() => removeApplied(bus.js, [ack.seq]));
  } finally {
    await nc.close().catch(() => {});
    await nats.stop();
  }
});
