/**
 * An execution's end is written at once, with its tasks' documents, not at the end of the state manager's
 * coalescing window (state_manager.ts, expedite): a caller waiting for the end (`?wait`, a parent) does not
 * wait out the window. Shown with a window of 2 minutes: only the end's own flush can store the documents
 * within the test's bound.
 */
import assert from "node:assert/strict";
import { create } from "@bufbuild/protobuf";
import { openStateStore } from "../../engine/mod.ts";
import { uuidv7 } from "../../engine/ids.ts";
import { StateManager } from "../../engine/state/state_manager.ts";
import { waitForTerminalDocument } from "../../engine/state/end_watch.ts";
import { Bus, type BusMessage, connectNats, provisionJetStream } from "../../pkg/nats/mod.ts";
import * as pb from "../../pkg/pb/mod.ts";
import { startTestNats } from "../support/nats.ts";

Deno.test({
  name: "state: an execution's end and its tasks' documents are written without waiting for the window",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const nats = await startTestNats();
    const nc = await connectNats(nats.url, { name: "state-end-flush-test" });
    await provisionJetStream(nc);
    const bus = new Bus(nc, { source: "test" });
    const store = await openStateStore(nc);
    const engine = new StateManager(bus, store, { coalesceMs: 120_000 });
    const execId = uuidv7();
    const tasks = [{ id: "a", execId: uuidv7() }, { id: "b", execId: uuidv7() }];
    const base = (eventId: string) => ({
      metadata: bus.metadata(execId, `${execId}:${eventId}`),
      workflow: { id: "wf", execId },
    });
    const publish = (message: unknown) => bus.publish(message as BusMessage);
    try {
      await engine.start();
      await publish(create(pb.WorkflowExecutionStartedSchema, base("started")));
      for (const task of tasks) {
        await publish(
          create(pb.TaskDispatchedSchema, { ...base(`${task.id}-dispatched`), task, taskType: "basic" }),
        );
        await publish(
          create(pb.TaskExecutionStartedSchema, { ...base(`${task.id}-started`), task, attempt: 1 }),
        );
        await publish(
          create(pb.TaskExecutionSuccessSchema, { ...base(`${task.id}-success`), task, attempt: 1 }),
        );
      }
      const ids = tasks.map((t) => t.execId);
      await publish(create(pb.WorkflowExecutionSuccessSchema, {
        ...base("success"),
        tasks: { execIds: ids, recordedExecIds: ids },
      }));
      // Generous for a loaded machine, and far below the window: the documents come from the end's flush.
      const ended = await waitForTerminalDocument({
        nc,
        subject: store.workflowSubject(execId),
        read: () => store.getWorkflow(execId),
        onReconnect: () => () => {},
      }, 30_000);
      assert.equal(ended?.status, "SUCCESS", `the end was not written: ${JSON.stringify(ended)}`);
      const state = await store.withTasks(ended!);
      assert.deepEqual(state.tasks.map((t) => [t.exec_id, t.status]), ids.map((id) => [id, "SUCCESS"]));
    } finally {
      await engine.stop();
      await nc.close();
      await nats.stop();
    }
  },
});
