/**
 * The order of state writes when several engines share the state consumer. An engine that dies holds the
 * task events it took until the ack wait gives them back, while another engine takes the execution's end:
 * a query that sees the execution ended must still see every task of it.
 */
import assert from "node:assert/strict";
import { create } from "@bufbuild/protobuf";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { openStateStore } from "../../engine/mod.ts";
import { uuidv7 } from "../../engine/ids.ts";
import { STATE_CONSUMER, StateManager } from "../../engine/state/state_manager.ts";
import { waitForTerminalDocument } from "../../engine/state/end_watch.ts";
import {
  BUCKETS,
  Bus,
  type BusMessage,
  connectNats,
  DLQ_REASON_HEADER,
  provisionJetStream,
  STREAMS,
} from "../../pkg/nats/mod.ts";
import * as pb from "../../pkg/pb/mod.ts";
import { startTestNats } from "../support/nats.ts";

const ACK_WAIT_MS = 1_000;

/** Resolves once the state consumer holds no unacknowledged event: every event taken is fully applied. */
async function stateEventsAcknowledged(bus: Bus): Promise<void> {
  const jsm = await jetstreamManager(bus.nc);
  while ((await jsm.consumers.info(STREAMS.events, STATE_CONSUMER)).num_ack_pending > 0) {
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** A nats-server with Compozy's streams and buckets, a bus and a state store on it; `close` stops both. */
async function stateFixture() {
  const nats = await startTestNats();
  const nc = await connectNats(nats.url, { name: "state-order-test" });
  await provisionJetStream(nc);
  const bus = new Bus(nc, { source: "test" });
  const store = await openStateStore(nc);
  const close = async () => {
    await nc.close();
    await nats.stop();
  };
  /** The execution's document once it is terminal, or the latest one after `timeoutMs`. */
  const ended = (execId: string, timeoutMs: number) =>
    waitForTerminalDocument({
      nc,
      subject: store.workflowSubject(execId),
      read: () => store.getWorkflow(execId),
      onReconnect: () => () => {},
    }, timeoutMs);
  return { nc, bus, store, close, ended };
}

Deno.test({
  name: "state: an end waits for the task events a dead engine held, and the consumer takes the ack wait",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const { nc, bus, store, close, ended: endedDocument } = await stateFixture();
    const execId = uuidv7();
    const taskExecId = uuidv7();
    const base = (eventId: string) => ({
      metadata: bus.metadata(execId, `${execId}:${eventId}`),
      workflow: { id: "wf", execId },
    });
    const publish = (message: unknown) => bus.publish(message as BusMessage);
    let engine: StateManager | undefined;
    try {
      // The first engine creates the consumer with the default ack wait and folds the start.
      engine = new StateManager(bus, store);
      await engine.start();
      await publish(create(pb.WorkflowExecutionStartedSchema, base("started")));
      while (!(await store.getWorkflow(execId))) await new Promise((r) => setTimeout(r, 10));
      await engine.stop();
      engine = undefined;

      // A dead engine: it took the task's events and will never acknowledge them.
      const task = { id: "step", execId: taskExecId };
      await publish(create(pb.TaskDispatchedSchema, { ...base("dispatched"), task, taskType: "basic" }));
      await publish(create(pb.TaskExecutionSuccessSchema, { ...base("success"), task, attempt: 1 }));
      const held = await (await jetstream(nc).consumers.get(STREAMS.events, STATE_CONSUMER)).fetch({
        max_messages: 2,
        expires: 2_000,
      });
      let taken = 0;
      for await (const _msg of held) if (++taken === 2) break;
      assert.equal(taken, 2);

      // The surviving engine, started with a short ack wait, takes the end.
      engine = new StateManager(bus, store, { ackWaitMs: ACK_WAIT_MS });
      await engine.start();
      const info = await (await jetstreamManager(nc)).consumers.info(STREAMS.events, STATE_CONSUMER);
      assert.equal(info.config.ack_wait, ACK_WAIT_MS * 1_000_000);
      // The end lists the task as its driver knew it: dispatched, its outcome recorded.
      const tasks = { execIds: [taskExecId], recordedExecIds: [taskExecId] };
      await publish(create(pb.WorkflowExecutionSuccessSchema, { ...base("end"), tasks }));

      const ended = await endedDocument(execId, 30_000);
      assert.equal(ended?.status, "SUCCESS");
      const state = await store.withTasks(ended!);
      assert.deepEqual(state.tasks.map((t) => [t.task_id, t.status]), [["step", "SUCCESS"]]);
    } finally {
      await engine?.stop();
      await close();
    }
  },
});

Deno.test({
  name: "state: an end waits for its own tasks only, not for another execution's events a dead engine holds",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const { nc, bus, store, close, ended: endedDocument } = await stateFixture();
    const publish = (message: unknown) => bus.publish(message as BusMessage);
    const base = (execId: string, eventId: string) => ({
      metadata: bus.metadata(execId, `${execId}:${eventId}`),
      workflow: { id: "wf", execId },
    });
    // The ack wait (60 s) is past the bound below: a wait for the held events could not end within it.
    let engine = new StateManager(bus, store, { ackWaitMs: 60_000 });
    try {
      await engine.start();
      const other = uuidv7();
      await publish(create(pb.WorkflowExecutionStartedSchema, base(other, "started")));
      while (!(await store.getWorkflow(other))) await new Promise((r) => setTimeout(r, 10));
      await engine.stop();
      // A dead engine takes a task event of the other execution and never acknowledges it.
      const task = { id: "step", execId: uuidv7() };
      await publish(create(pb.TaskExecutionSuccessSchema, { ...base(other, "success"), task, attempt: 1 }));
      const held = await (await jetstream(nc).consumers.get(STREAMS.events, STATE_CONSUMER)).fetch({
        max_messages: 1,
        expires: 2_000,
      });
      for await (const _msg of held) break;

      engine = new StateManager(bus, store, { ackWaitMs: 60_000 });
      await engine.start();
      const execId = uuidv7();
      const own = { id: "step", execId: uuidv7() };
      await publish(create(pb.WorkflowExecutionStartedSchema, base(execId, "started")));
      await publish(
        create(pb.TaskDispatchedSchema, { ...base(execId, "dispatched"), task: own, taskType: "basic" }),
      );
      await publish(
        create(pb.TaskExecutionSuccessSchema, { ...base(execId, "success"), task: own, attempt: 1 }),
      );
      const tasks = { execIds: [own.execId], recordedExecIds: [own.execId] };
      await publish(create(pb.WorkflowExecutionSuccessSchema, { ...base(execId, "end"), tasks }));
      // A liveness bound, not a speed target: an end held for every earlier event of the stream (the
      // consumer's ack floor) waited 10 s here, or the held event's ack wait.
      const ended = await endedDocument(execId, 5_000);
      assert.equal(ended?.status, "SUCCESS");
      const state = await store.withTasks(ended!);
      assert.deepEqual(state.tasks.map((t) => [t.task_id, t.status]), [["step", "SUCCESS"]]);
      // This execution's own events may still have their acks on the way when its end is seen (CI, once: 4
      // pending): wait for those, then the held event is the one left.
      const jsm = await jetstreamManager(nc);
      const pending = async () => (await jsm.consumers.info(STREAMS.events, STATE_CONSUMER)).num_ack_pending;
      const settleBy = Date.now() + 5_000;
      while (await pending() > 1 && Date.now() < settleBy) await new Promise((r) => setTimeout(r, 20));
      assert.equal(await pending(), 1, "the other execution's event is still held");
    } finally {
      await engine.stop();
      await close();
    }
  },
});

Deno.test({
  name: "state: an event that cannot be folded holds no end back and goes to the DLQ after its deliveries",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const { nc, bus, store, close, ended: endedDocument } = await stateFixture();
    const engine = new StateManager(bus, store, { ackWaitMs: ACK_WAIT_MS, maxDeliveries: 3 });
    const orphan = uuidv7();
    const execId = uuidv7();
    const publish = (message: unknown) => bus.publish(message as BusMessage);
    try {
      await engine.start();
      // A task event of an execution whose start was never stored: it cannot be folded.
      await publish(create(pb.TaskExecutionSuccessSchema, {
        metadata: bus.metadata(orphan, `${orphan}:t`),
        workflow: { id: "wf", execId: orphan },
        task: { id: "step", execId: uuidv7() },
        attempt: 1,
      }));
      const base = (eventId: string) => ({
        metadata: bus.metadata(execId, `${execId}:${eventId}`),
        workflow: { id: "wf", execId },
      });
      await publish(create(pb.WorkflowExecutionStartedSchema, base("started")));
      await publish(create(pb.WorkflowExecutionSuccessSchema, base("end")));
      const ended = await endedDocument(execId, 30_000);
      assert.equal(ended?.status, "SUCCESS");
      // The orphan comes back with a growing delay, then goes to the DLQ and stops holding the floor.
      const jsm = await jetstreamManager(nc);
      let dead = null;
      while (!dead) {
        await new Promise((r) => setTimeout(r, 50));
        dead = await jsm.streams.getMessage(STREAMS.deadLetters, { last_by_subj: "compozy.dlq.task.evts" })
          .catch(() => null);
      }
      assert.match(dead.header.get(DLQ_REASON_HEADER), /not folded after 3 deliveries/);
      // Terminated just after the DLQ write: the consumer's floor then passes it.
      let info = await jsm.consumers.info(STREAMS.events, STATE_CONSUMER);
      while (info.num_ack_pending > 0) info = await jsm.consumers.info(STREAMS.events, STATE_CONSUMER);
      assert.equal(info.ack_floor.stream_seq, 3);
    } finally {
      await engine.stop();
      await close();
    }
  },
});

Deno.test({
  name: "state: a task reads WAITING only after its execution's document and the index of waits list it (G4)",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const { nc, bus, store, close } = await stateFixture();
    const engine = new StateManager(bus, store);
    const execId = uuidv7();
    const task = { id: "approve", execId: uuidv7() };
    const base = (eventId: string) => ({
      metadata: bus.metadata(execId, `${execId}:${eventId}`),
      workflow: { id: "wf", execId },
    });
    const publish = (message: unknown) => bus.publish(message as BusMessage);
    // Every state write as nats-server stores it, in order: which document, and what it says.
    const writes: string[] = [];
    const decoder = new TextDecoder();
    const watch = (subject: string, describe: (doc: Record<string, unknown>) => string) =>
      nc.subscribe(subject, {
        callback: (_err, msg) => {
          writes.push(describe(msg.data.length ? JSON.parse(decoder.decode(msg.data)) : {}));
        },
      });
    watch(`$KV.${BUCKETS.workflowExecutions}.${execId}`, (doc) => `execution ${JSON.stringify(doc.waiting)}`);
    watch(`$KV.${BUCKETS.waiting}.>`, () => "index");
    watch(`$KV.${BUCKETS.taskExecutions}.${execId}.*`, (doc) => `task ${doc.status}`);
    await nc.flush();
    try {
      await engine.start();
      await publish(create(pb.WorkflowExecutionStartedSchema, base("started")));
      while (!(await store.getWorkflow(execId))) await new Promise((r) => setTimeout(r, 10));
      // The wait's events as the driver sends them: dispatched and started unawaited, then the wait.
      await publish(create(pb.TaskDispatchedSchema, { ...base("dispatched"), task, taskType: "wait" }));
      await publish(create(pb.TaskExecutionStartedSchema, { ...base("task-started"), task, attempt: 1 }));
      await publish(
        create(pb.TaskExecutionWaitingStartedSchema, { ...base("waiting"), task, signalId: "go" }),
      );
      while (!writes.includes("task WAITING")) await new Promise((r) => setTimeout(r, 10));
      const waitingAt = writes.indexOf("task WAITING");
      const listedAt = writes.indexOf(`execution {"${task.execId}":"go"}`);
      const indexedAt = writes.indexOf("index");
      assert.ok(listedAt !== -1 && listedAt < waitingAt, `writes: ${writes.join(", ")}`);
      assert.ok(indexedAt !== -1 && indexedAt < waitingAt, `writes: ${writes.join(", ")}`);
      assert.deepEqual((await store.findWaiting("go")).map((d) => d.exec_id), [execId]);
    } finally {
      await engine.stop();
      await close();
    }
  },
});

Deno.test({
  name:
    "state: a wait's end leaves its task's document WAITING no later than the index of waits and its execution's",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const { nc, bus, store, close } = await stateFixture();
    const engine = new StateManager(bus, store);
    const execId = uuidv7();
    const task = { id: "approve", execId: uuidv7() };
    const base = (eventId: string) => ({
      metadata: bus.metadata(execId, `${execId}:${eventId}`),
      workflow: { id: "wf", execId },
    });
    const publish = (message: unknown) => bus.publish(message as BusMessage);
    // The task document's write of the wait's end is held (as when the engine dies before it, until the
    // event comes back), until its execution's document no longer lists the wait or 300 ms passed.
    const unlisted = Promise.withResolvers<void>();
    nc.subscribe(`$KV.${BUCKETS.workflowExecutions}.${execId}`, {
      callback: (_err, msg) => {
        const doc = JSON.parse(new TextDecoder().decode(msg.data));
        if (doc.wait_seq?.[task.execId] !== undefined && !(task.execId in doc.waiting)) unlisted.resolve();
      },
    });
    await nc.flush();
    let listedWhileShown: string[] | undefined;
    const putTask = store.putTask.bind(store);
    store.putTask = async (key, doc, revision) => {
      if (doc.status === "RUNNING" && listedWhileShown === undefined) {
        await Promise.race([unlisted.promise, new Promise((r) => setTimeout(r, 300))]);
        // The stored task document still says WAITING here: a broadcast must still find the execution.
        assert.equal((await store.get(execId))?.tasks[0].status, "WAITING");
        listedWhileShown = (await store.findWaiting("go")).map((d) => d.exec_id);
      }
      return await putTask(key, doc, revision);
    };
    try {
      await engine.start();
      await publish(create(pb.WorkflowExecutionStartedSchema, base("started")));
      await publish(create(pb.TaskDispatchedSchema, { ...base("dispatched"), task, taskType: "wait" }));
      await publish(
        create(pb.TaskExecutionWaitingStartedSchema, { ...base("waiting"), task, signalId: "go" }),
      );
      while ((await store.get(execId))?.tasks[0]?.status !== "WAITING") {
        await new Promise((r) => setTimeout(r, 10));
      }
      await publish(create(pb.TaskExecutionWaitingEndedSchema, { ...base("waiting-ended"), task }));
      while ((await store.getWorkflow(execId))?.status !== "RUNNING") {
        await new Promise((r) => setTimeout(r, 10));
      }
      assert.deepEqual(listedWhileShown, [execId]);
      assert.equal((await store.get(execId))?.tasks[0].status, "RUNNING");
      assert.deepEqual(await store.findWaiting("go"), []);
    } finally {
      await engine.stop();
      await close();
    }
  },
});

Deno.test({
  name: "state: a wait's end never unlists a wait of the same signal that another folder listed meanwhile",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const { bus, store, close } = await stateFixture();
    const engine = new StateManager(bus, store);
    const execId = uuidv7();
    const first = { id: "first", execId: uuidv7() };
    const second = { id: "second", execId: uuidv7() };
    const base = (eventId: string) => ({
      metadata: bus.metadata(execId, `${execId}:${eventId}`),
      workflow: { id: "wf", execId },
    });
    const publish = (message: unknown) => bus.publish(message as BusMessage);
    // Another engine folding for a moment too (a state folder's hand-over, exclusive_role.ts) lists a second
    // wait for `go` between this engine's write of the first wait's end and its removal of the index entry.
    const other = Promise.withResolvers<void>();
    const unindexWaits = store.unindexWaits.bind(store);
    store.unindexWaits = async (...args: Parameters<typeof store.unindexWaits>) => {
      const { doc, revision } = await store.getWorkflowWithRevision(execId);
      doc!.waiting[second.execId] = "go";
      await store.indexWaits(execId, ["go"]);
      await store.putWorkflow(doc!, revision);
      other.resolve();
      return await unindexWaits(...args);
    };
    try {
      await engine.start();
      await publish(create(pb.WorkflowExecutionStartedSchema, base("started")));
      await publish(
        create(pb.TaskExecutionWaitingStartedSchema, { ...base("waiting"), task: first, signalId: "go" }),
      );
      while (!(await store.findWaiting("go")).length) await new Promise((r) => setTimeout(r, 10));
      await publish(create(pb.TaskExecutionWaitingEndedSchema, { ...base("waiting-ended"), task: first }));
      await other.promise;
      let doc = await store.getWorkflow(execId);
      while (first.execId in doc!.waiting) doc = await store.getWorkflow(execId);
      // The engine's removal has run once its event is acknowledged.
      await stateEventsAcknowledged(bus);
      assert.deepEqual(doc!.waiting, { [second.execId]: "go" });
      assert.deepEqual((await store.findWaiting("go")).map((d) => d.exec_id), [execId]);
    } finally {
      await engine.stop();
      await close();
    }
  },
});

Deno.test({
  name: "state: leaving a status never unlists the execution that another folder moved back to it meanwhile",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const { bus, store, close } = await stateFixture();
    const engine = new StateManager(bus, store);
    const execId = uuidv7();
    const task = { id: "await", execId: uuidv7() };
    const base = (eventId: string) => ({
      metadata: bus.metadata(execId, `${execId}:${eventId}`),
      workflow: { id: "wf", execId },
    });
    const publish = (message: unknown) => bus.publish(message as BusMessage);
    // Another engine folding for a moment too (a state folder's hand-over, exclusive_role.ts) moves the
    // execution back to WAITING (a new wait) between this engine's write of RUNNING and its removal of the
    // WAITING entry: its own entry for WAITING replaces the one this engine's previous document names.
    const other = Promise.withResolvers<void>();
    const unindexStatus = store.unindexStatus.bind(store);
    store.unindexStatus = async (...args: Parameters<typeof store.unindexStatus>) => {
      if (args[0].status === "WAITING") {
        const { doc, revision } = await store.getWorkflowWithRevision(execId);
        doc!.status = "WAITING";
        doc!.index_seq = await store.indexStatus(doc!);
        await store.putWorkflow(doc!, revision);
        other.resolve();
      }
      return await unindexStatus(...args);
    };
    try {
      await engine.start();
      await publish(create(pb.WorkflowExecutionStartedSchema, base("started")));
      await publish(
        create(pb.TaskExecutionWaitingStartedSchema, { ...base("waiting"), task, signalId: "go" }),
      );
      while (!(await store.idsBy("wf", "WAITING")).length) await new Promise((r) => setTimeout(r, 10));
      await publish(create(pb.TaskExecutionWaitingEndedSchema, { ...base("waiting-ended"), task }));
      await other.promise;
      // The engine's removal has run once its event is acknowledged.
      await stateEventsAcknowledged(bus);
      assert.equal((await store.getWorkflow(execId))!.status, "WAITING");
      assert.deepEqual(await store.idsBy("wf", "WAITING"), [execId]);
    } finally {
      await engine.stop();
      await close();
    }
  },
});

Deno.test({
  name: "state: a wait start redelivered after the wait ended brings the wait back nowhere (issue 9, 10)",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const { nc, bus, store, close } = await stateFixture();
    const execId = uuidv7();
    const task = { id: "approve", execId: uuidv7() };
    const base = (eventId: string) => ({
      metadata: bus.metadata(execId, `${execId}:${eventId}`),
      workflow: { id: "wf", execId },
    });
    const publish = (message: unknown) => bus.publish(message as BusMessage);
    let engine: StateManager | undefined;
    try {
      engine = new StateManager(bus, store, { ackWaitMs: ACK_WAIT_MS });
      await engine.start();
      await publish(create(pb.WorkflowExecutionStartedSchema, base("started")));
      await publish(create(pb.TaskDispatchedSchema, { ...base("dispatched"), task, taskType: "wait" }));
      while (!(await store.get(execId))?.tasks.length) await new Promise((r) => setTimeout(r, 10));
      await engine.stop();

      // A dead engine took the wait's start; the surviving engine folds its end first.
      const waitStarted = await publish(
        create(pb.TaskExecutionWaitingStartedSchema, { ...base("waiting"), task, signalId: "go" }),
      );
      const held = await (await jetstream(nc).consumers.get(STREAMS.events, STATE_CONSUMER)).fetch({
        max_messages: 1,
        expires: 2_000,
      });
      for await (const msg of held) assert.equal(msg.seq, waitStarted.seq);
      const waitEnded = await publish(
        create(pb.TaskExecutionWaitingEndedSchema, { ...base("waiting-ended"), task }),
      );
      engine = new StateManager(bus, store, { ackWaitMs: ACK_WAIT_MS });
      await engine.start();

      // The wait's start comes back after the ack wait and is folded (acknowledged) after its end.
      const jsm = await jetstreamManager(nc);
      let info = await jsm.consumers.info(STREAMS.events, STATE_CONSUMER);
      while (info.ack_floor.stream_seq < waitEnded.seq || info.num_ack_pending > 0) {
        await new Promise((r) => setTimeout(r, 50));
        info = await jsm.consumers.info(STREAMS.events, STATE_CONSUMER);
      }
      const doc = await store.getWorkflow(execId);
      assert.deepEqual(doc?.waiting, {});
      assert.equal(doc?.status, "RUNNING");
      const state = await store.get(execId);
      assert.deepEqual(state?.tasks.map((t) => [t.task_id, t.status, t.waiting_for]), [[
        "approve",
        "RUNNING",
        null,
      ]]);
      assert.deepEqual(await store.findWaiting("go"), []);
    } finally {
      await engine?.stop();
      await close();
    }
  },
});
