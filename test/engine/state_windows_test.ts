/**
 * Events that only record a task's progress wait for more before they are written (state_manager.ts,
 * RUNNING_WINDOW_MS; issue 11). A task's dispatch and start wait for its outcome: a task that ends within the
 * window costs one write of its document, not two, and its outcome is written at once. The execution's
 * document waits as long for its tasks' dispatches and the outcomes of tasks that never waited: a collection's
 * document, whose later events change nothing once its list of tasks is past its bound, is no longer checked
 * against its stored revision after every few events. Counted here with a window far longer than the test's
 * bounds: only the outcome's and the end's own flushes can store the documents in time.
 */
import assert from "node:assert/strict";
import { create } from "@bufbuild/protobuf";
import { openStateStore } from "../../engine/mod.ts";
import { uuidv7 } from "../../engine/ids.ts";
import { STATE_CONSUMER, StateManager } from "../../engine/state/state_manager.ts";
import { waitForTerminalDocument } from "../../engine/state/end_watch.ts";
import { MAX_LISTED_TASKS } from "../../engine/state/execution_state.ts";
import { jetstreamManager } from "@nats-io/jetstream";
import { Bus, type BusMessage, connectNats, provisionJetStream, STREAMS } from "../../pkg/nats/mod.ts";
import * as pb from "../../pkg/pb/mod.ts";
import { startTestNats } from "../support/nats.ts";

const LONG_WINDOW_MS = 120_000;

async function withStateManager(
  name: string,
  fn: (ctx: {
    bus: Bus;
    store: Awaited<ReturnType<typeof openStateStore>>;
    nc: Bus["nc"];
    execId: string;
    base: (eventId: string) => { metadata: pb.Metadata; workflow: { id: string; execId: string } };
    publish: (message: unknown) => Promise<unknown>;
  }) => Promise<void>,
) {
  const nats = await startTestNats();
  const nc = await connectNats(nats.url, { name });
  let manager: StateManager | undefined;
  try {
    await provisionJetStream(nc);
    const bus = new Bus(nc, { source: "test" });
    const store = await openStateStore(nc);
    manager = new StateManager(bus, store, { runningWindowMs: LONG_WINDOW_MS });
    await manager.start();
    const execId = uuidv7();
    const base = (eventId: string) => ({
      metadata: bus.metadata(execId, `${execId}:${eventId}`),
      workflow: { id: "wf", execId },
    });
    await fn({ bus, store, nc, execId, base, publish: (message) => bus.publish(message as BusMessage) });
  } finally {
    await manager?.stop();
    await nc.close();
    await nats.stop();
  }
}

Deno.test({
  name: "state: a task that ends within the window costs one write of its document, made at its outcome",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await withStateManager("state-windows-task-test", async ({ store, nc, execId, base, publish }) => {
      const task = { id: "a", execId: uuidv7() };
      const key = `${execId}.${task.execId}`;
      const writes: string[] = [];
      const sub = nc.subscribe(`$KV.compozy_task_executions.${key}`, {
        callback: (_e, msg) => {
          writes.push(JSON.parse(new TextDecoder().decode(msg.data)).status);
        },
      });
      await publish(create(pb.WorkflowExecutionStartedSchema, base("started")));
      await publish(create(pb.TaskDispatchedSchema, { ...base("a-dispatched"), task, taskType: "basic" }));
      await publish(create(pb.TaskExecutionStartedSchema, { ...base("a-started"), task, attempt: 1 }));
      // Far past the short window (5 ms): before this change the dispatch and start were written by now.
      await new Promise((r) => setTimeout(r, 300));
      await publish(create(pb.TaskExecutionSuccessSchema, { ...base("a-success"), task, attempt: 1 }));
      const deadline = Date.now() + 30_000;
      while ((await store.getTaskWithRevision(key)).doc?.status !== "SUCCESS" && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 50));
      }
      await nc.flush();
      sub.unsubscribe();
      const stored = (await store.getTaskWithRevision(key)).doc;
      assert.equal(stored?.status, "SUCCESS", `not written at its outcome: ${JSON.stringify(stored)}`);
      assert.equal(stored?.attempts, 1);
      assert.ok(stored?.started_at, "the start's fields are folded into the one write");
      assert.deepEqual(writes, ["SUCCESS"], `writes of the task's document: ${writes.join(", ")}`);
    });
  },
});

Deno.test({
  name:
    "state: a collection's document is not checked or written per burst of its tasks' dispatches and outcomes",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await withStateManager("state-windows-workflow-test", async ({ store, nc, execId, base, publish }) => {
      let revisionReads = 0;
      const revisionOf = store.revisionOf.bind(store);
      store.revisionOf = (bucket, key) => {
        if (bucket === "workflows") revisionReads++;
        return revisionOf(bucket, key);
      };
      let writes = 0;
      const putWorkflow = store.putWorkflow.bind(store);
      store.putWorkflow = (doc, revision) => {
        writes++;
        return putWorkflow(doc, revision);
      };
      await publish(create(pb.WorkflowExecutionStartedSchema, base("started")));
      const ids: string[] = [];
      for (let i = 0; i < MAX_LISTED_TASKS + 72; i++) {
        const task = { id: "one", execId: uuidv7() };
        ids.push(task.execId);
        await publish(create(pb.TaskDispatchedSchema, { ...base(`d${i}`), task, taskType: "basic" }));
        await publish(create(pb.TaskExecutionSuccessSchema, { ...base(`s${i}`), task, attempt: 1 }));
        // Pauses far past the short window (5 ms), in which each burst was written or checked before.
        if (i % 20 === 19) await new Promise((r) => setTimeout(r, 50));
      }
      await publish(create(pb.WorkflowExecutionSuccessSchema, {
        ...base("end"),
        tasks: { execIds: ids, recordedExecIds: ids },
      }));
      const ended = await waitForTerminalDocument({
        nc,
        subject: store.workflowSubject(execId),
        read: () => store.getWorkflow(execId),
        onReconnect: () => () => {},
      }, 60_000);
      assert.equal(ended?.status, "SUCCESS");
      const state = await store.withTasks(ended!);
      assert.equal(state.tasks.length, ids.length);
      assert.ok(state.tasks.every((t) => t.status === "SUCCESS"));
      // The start's document (the first event does not wait), then the end with everything before it.
      assert.equal(revisionReads, 0, `${revisionReads} revision checks of the execution's document`);
      assert.ok(writes <= 3, `${writes} writes of the execution's document`);
    });
  },
});

Deno.test({
  name:
    "state: the documents' windows share one timer (100 tasks dispatched at once arm it once, not 100 times)",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await withStateManager("state-windows-timer-test", async ({ nc, base, publish }) => {
      await publish(create(pb.WorkflowExecutionStartedSchema, base("started")));
      // Timers the state manager's own code arms (the ack batch and the request deadlines have their own).
      const realSetTimeout = globalThis.setTimeout;
      let armed = 0;
      globalThis.setTimeout = ((...args: Parameters<typeof setTimeout>) => {
        if (/engine\/state\/(state_manager|window_timers)\.ts/.test(new Error().stack ?? "")) armed++;
        return realSetTimeout(...args);
      }) as typeof setTimeout;
      try {
        const tasks = Array.from({ length: 100 }, (_, i) => ({ id: `t${i}`, execId: uuidv7() }));
        for (const task of tasks) {
          await publish(
            create(pb.TaskDispatchedSchema, { ...base(`${task.id}-dispatched`), task, taskType: "basic" }),
          );
        }
        // Every dispatch delivered (each waits in its document's long window, unacknowledged), then folded.
        const jsm = await jetstreamManager(nc);
        const deadline = Date.now() + 30_000;
        while ((await jsm.consumers.info(STREAMS.events, STATE_CONSUMER)).num_ack_pending < 100) {
          assert.ok(Date.now() < deadline, "the dispatches were not delivered to the state manager in 30 s");
          await new Promise((r) => realSetTimeout(r, 20));
        }
        await new Promise((r) => realSetTimeout(r, 100));
        // Each task's document and the execution's have a window open: one timer for all, armed for the first.
        assert.ok(armed <= 2, `${armed} timers armed for 101 windows (100 tasks and the execution)`);
      } finally {
        globalThis.setTimeout = realSetTimeout;
      }
    });
  },
});
