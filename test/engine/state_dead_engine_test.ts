/**
 * The state events an engine held when it died are folded by another engine within seconds
 * (STATE_ACK_WAIT_MS), not after the 30 s ack wait the state consumer had: after an engine's kill the ends it
 * was folding reached the API 30 s late (`deno task bench cluster`, row `R3 2+2 kills`). The dead engine is a
 * client that takes an execution's events from the shared consumer and closes its connection unacknowledged.
 */
import assert from "node:assert/strict";
import { create } from "@bufbuild/protobuf";
import { openStateStore } from "../../engine/mod.ts";
import { uuidv7 } from "../../engine/ids.ts";
import { STATE_CONSUMER, StateManager } from "../../engine/state/state_manager.ts";
import { waitForTerminalDocument } from "../../engine/state/end_watch.ts";
import { Bus, type BusMessage, connectNats, provisionJetStream, STREAMS } from "../../pkg/nats/mod.ts";
import { jetstream } from "@nats-io/jetstream";
import * as pb from "../../pkg/pb/mod.ts";
import { startTestNats } from "../support/nats.ts";

Deno.test({
  name: "state: the events a dead engine held are folded by another engine within seconds",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const nats = await startTestNats();
    const nc = await connectNats(nats.url, { name: "state-dead-engine-test" });
    let survivor: StateManager | undefined;
    try {
      await provisionJetStream(nc);
      const bus = new Bus(nc, { source: "test" });
      const store = await openStateStore(nc);
      // The shared consumer as an engine creates it (its ack wait included).
      const first = new StateManager(bus, store);
      await first.start();
      await first.stop();
      const execId = uuidv7();
      const task = { id: "a", execId: uuidv7() };
      const base = (eventId: string) => ({
        metadata: bus.metadata(execId, `${execId}:${eventId}`),
        workflow: { id: "wf", execId },
      });
      const publish = (message: unknown) => bus.publish(message as BusMessage);
      await publish(create(pb.WorkflowExecutionStartedSchema, base("started")));
      await publish(create(pb.TaskDispatchedSchema, { ...base("dispatched"), task, taskType: "basic" }));
      await publish(create(pb.TaskExecutionStartedSchema, { ...base("task-started"), task, attempt: 1 }));
      await publish(create(pb.TaskExecutionSuccessSchema, { ...base("task-success"), task, attempt: 1 }));
      await publish(create(pb.WorkflowExecutionSuccessSchema, {
        ...base("success"),
        tasks: { execIds: [task.execId], recordedExecIds: [task.execId] },
      }));
      // The engine that dies: it takes the five events and never acknowledges them.
      const doomed = await connectNats(nats.url, { name: "state-dead-engine" });
      const consumer = await jetstream(doomed).consumers.get(STREAMS.events, STATE_CONSUMER);
      let held = 0;
      for await (const _ of await consumer.fetch({ max_messages: 5, expires: 5_000 })) held++;
      assert.equal(held, 5, "the dead engine took the execution's events");
      await doomed.close();
      const killedAt = Date.now();

      survivor = new StateManager(bus, store);
      await survivor.start();
      // Below the 30 s ack wait of before, generous for a loaded machine.
      const end = await waitForTerminalDocument({
        nc,
        subject: store.workflowSubject(execId),
        read: () => store.getWorkflow(execId),
        onReconnect: () => () => {},
      }, 20_000);
      assert.equal(
        end?.status,
        "SUCCESS",
        `the end was not folded within 20 s of the engine's death: ${JSON.stringify(end)}`,
      );
      console.log(`end folded ${Date.now() - killedAt} ms after the engine's death`);
    } finally {
      await survivor?.stop();
      await nc.close();
      await nats.stop();
    }
  },
});
