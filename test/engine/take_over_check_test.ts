/**
 * The state fold's look at the stream for an old outcome (engine/state/take_over_check.ts): an outcome stored
 * after a take-over of a higher lease revision is a paused engine's late write, whatever the documents have
 * folded so far. Real parts: a nats-server 2.9 (its STREAM.MSG.GET answers `next_by_subj`), the EVENTS stream
 * as the engine provisions it, events published as the drivers publish them.
 */
import assert from "node:assert/strict";
import { create, type DescMessage, type MessageInitShape } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { jetstreamManager } from "@nats-io/jetstream";
import type { StoredEvent } from "../../engine/history/read_history.ts";
import { uuidv7 } from "../../engine/ids.ts";
import { TakeOverCheck } from "../../engine/state/take_over_check.ts";
import { Bus, type BusMessage, connectNats, provisionJetStream } from "../../pkg/nats/mod.ts";
import * as pb from "../../pkg/pb/mod.ts";
import { startTestNats } from "../support/nats.ts";

Deno.test({
  name: "take-over check: an old outcome stored after a take-over of a higher revision is fenced",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const nats = await startTestNats();
    const nc = await connectNats(nats.url, { name: "take-over-check" });
    try {
      await provisionJetStream(nc);
      const bus = new Bus(nc, { source: "test" });
      const execId = uuidv7();
      const workflow = { id: "wf", execId };
      const task = { id: "slow", execId: uuidv7() };
      /** Publishes as a driver holding `lease` would, written `ageMs` ago; returns it as the fold sees it. */
      const publish = async <S extends DescMessage>(
        type: string,
        schema: S,
        lease: number,
        init: MessageInitShape<S>,
        ageMs = 5_000,
      ): Promise<StoredEvent> => {
        const message = create(schema, init) as BusMessage;
        message.metadata = bus.metadata(execId);
        message.metadata.time = timestampFromMs(Date.now() - ageMs);
        message.metadata.leaseRevision = BigInt(lease);
        const ack = await bus.publish(message);
        return { seq: ack.seq, subject: "", type, time: new Date(Date.now() - ageMs), message };
      };
      const check = new TakeOverCheck(await jetstreamManager(nc));
      const success = (lease: number, ageMs?: number) =>
        publish("task.success", pb.TaskExecutionSuccessSchema, lease, { workflow, task }, ageMs);
      const takeOver = (lease: number) =>
        publish("workflow.taken_over", pb.WorkflowExecutionTakenOverSchema, lease, { workflow, engine: "b" });

      await publish("workflow.started", pb.WorkflowExecutionStartedSchema, 0, { workflow });
      const beforeTakeOver = await success(5);
      // Another execution's take-over fences nothing here.
      await publish("workflow.taken_over", pb.WorkflowExecutionTakenOverSchema, 50, {
        workflow: { id: "wf", execId: uuidv7() },
      });
      await takeOver(9);
      const late = await success(5);
      const lateButFresh = await success(5, 0);
      const newHolder = await success(9);
      await takeOver(7); // A late take-over of an older holder: it raises nothing.
      const afterBoth = await success(8);

      assert.equal(await check.fences(beforeTakeOver), false, "stored before the take-over: history");
      assert.equal(await check.fences(late), true, "stored after a take-over of a higher revision");
      assert.equal(await check.fences(lateButFresh), false, "a fresh outcome is not looked up");
      assert.equal(await check.fences(newHolder), false, "the new holder's own outcome");
      assert.equal(await check.fences(afterBoth), true, "revision 8 after the take-over at 9");
    } finally {
      await nc.close();
      await nats.stop();
    }
  },
});
