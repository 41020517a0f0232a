/**
 * The state manager folds every workflow and task event into the KV documents queries read. Events of one
 * document are applied in order and coalesced: while a write is in flight, later events queue and go out
 * in one write. Several engines may run it on one durable consumer; the KV revision check settles their
 * races. An engine folds while it holds the state folder's lease (STATE_FOLDER_ROLE), so that normally one
 * engine writes every document. An execution's end lists the tasks its driver knew and is written once the documents of its recorded
 * tasks are stored ended, wherever those were folded (ended_tasks.ts).
 */
import type { DescMessage, MessageShape } from "@bufbuild/protobuf";
import type { Bus, Consumer, Delivery, Outcome } from "../../pkg/nats/mod.ts";
import { encode, schemaOf, STREAMS } from "../../pkg/nats/mod.ts";
import { readExecutionEvents, type StoredEvent } from "../history/read_history.ts";
import { type LeaseFence, withoutZombieWrites } from "../history/lease_fence.ts";
import type { TakeOverCheck } from "./take_over_check.ts";
import { isTerminal, type TaskExecutionState, type WorkflowDocument } from "./execution_state.ts";
import { documentsOf, foldChanged, foldCopy, foldTaskDocument, foldWorkflowDocument } from "./state_fold.ts";
import type { StateStore } from "./state_store.ts";
import { EndedTasks } from "./ended_tasks.ts";
import { ExclusiveRole } from "./exclusive_role.ts";
import type { Leases } from "../leases.ts";
import { getLogger } from "../../pkg/logger/mod.ts";
import { type Window, WindowTimers } from "./window_timers.ts";
import { CATCH_UP_AFTER_MS, catchUpEnd, RepairTurns, StoredEnds } from "./end_catch_up.ts";

const log = getLogger(["engine", "state"]);

/**
 * How long the first event of a document waits for the next ones before the write. A fast task's
 * dispatched, started and success events then cost one KV write instead of three; queries see a change at
 * most this much later. An execution's end does not wait: its document and its tasks' are written at once
 * (a caller waits for that end; see expedite).
 */
const COALESCE_MS = 5;

/**
 * How long a task's dispatch and start wait for its outcome before they are written on their own. A task
 * that ends within it costs one write of its document instead of two (a collection's items, issue 11); its
 * outcome is written at once when it comes (nothing follows it), and queries see a running task at most
 * this much later. The execution's document waits as long for what only lists its tasks (a dispatch, the
 * outcome of a task that never waited): its end lists them all and is written at once (expedite).
 */
const RUNNING_WINDOW_MS = 250;

/** Task events that end a wait in the execution's document (see foldWait): written after the task's. */
const WAIT_ENDS = new Set([
  "task.waiting_ended",
  "task.waiting_timed_out",
  "task.success",
  "task.failed",
  "task.canceled",
]);

/** Task events after which nothing more changes the task's document: its write need not wait for more. */
const TASK_ENDS = new Set([
  "task.success",
  "task.failed",
  "task.canceled",
  "task.timed_out",
  "task.waiting_timed_out",
]);

/** Workflow and task events are folded; tool and agent events are history only. */
const FOLDED = /^compozy\.[^.]+\.(workflow|task)\.evts\./;

/** The durable consumer every engine's state manager shares. */
export const STATE_CONSUMER = "compozy-state";

/** The workflow events that end an execution. */
const ENDS = new Set(["workflow.success", "workflow.failed", "workflow.canceled", "workflow.timed_out"]);

/**
 * Deliveries of one event before it goes to the DLQ. A task event folded before its execution's start
 * comes back every 2 s at most while another engine holds the start (up to an ack wait); past this bound
 * (minutes) the state store is unreachable or the event cannot be folded, and it must not hold the floor.
 */
export const MAX_FOLD_DELIVERIES = 100;

/**
 * How soon the state events a dead engine held come back to another engine. It was 30 s, so after an engine's
 * kill the ends it was folding reached the API 30 s late (`deno task bench cluster`, row `R3 2+2 kills`). A
 * live engine's fold that takes longer (an end waiting for its tasks' documents) says it is still at work
 * (see start), so the ack wait only has to outlast a stalled event loop, as the workflow commands' 3 s do.
 */
export const STATE_ACK_WAIT_MS = 5_000;

export interface StateManagerOptions {
  /** The state consumer's ack wait: how soon a dead engine's events come back; default STATE_ACK_WAIT_MS. */
  ackWaitMs?: number;
  /** Deliveries of one event before it goes to the DLQ; default MAX_FOLD_DELIVERIES. */
  maxDeliveries?: number;
  /** How long a document's first event waits for the next ones before the write; default COALESCE_MS. */
  coalesceMs?: number;
  /** How long events that only record a task's progress wait; default RUNNING_WINDOW_MS. */
  runningWindowMs?: number;
  /** How long an end may take to show before it is written from the history; default CATCH_UP_AFTER_MS. */
  catchUpAfterMs?: number;
  /** Checks an old outcome against the execution's take-overs in the stream (take_over_check.ts). */
  takeOvers?: Pick<TakeOverCheck, "fences">;
  /**
   * With the engines' leases, one engine at a time folds (see STATE_FOLDER_ROLE); without, every state
   * manager on the consumer folds.
   */
  leases?: Leases;
}

/**
 * The lease key of the state fold: one engine folds every execution's events, the others stand by (see
 * ExclusiveRole). When engines shared the consumer, each took a random part of every execution's events, so
 * with a second engine each document was written by both: a write per engine where one engine coalesced
 * them, a read after each write the other engine made (its cached revision stale), and on nats-server 2.9
 * clusters lost updates that an end repaired seconds later (`deno task bench cluster`, R3 2 + 2: KV gets per
 * workflow 10.6 -> 18.9, KV writes 9.8 -> 14.1, 86 of 300 ends seen more than 3 s late).
 */
export const STATE_FOLDER_ROLE = "compozy-state-folder";

interface Queued {
  event: StoredEvent;
  done: (error?: unknown) => void;
  /**
   * A write this one must follow: a task's wait is listed before its document says WAITING, and its
   * document says so no longer before the wait is unlisted.
   */
  after?: Promise<void>;
  /** It only records a task's progress: its write may wait the long window (see isLazy). */
  lazy: boolean;
}

interface Queue {
  events: Queued[];
  running: boolean;
  /** The coalescing window, until the queue's drain starts. */
  window?: Window;
  /** Whether the window is the long one (see RUNNING_WINDOW_MS): a later event may shorten it. */
  lazy?: boolean;
}

/** A task write not yet stored: its task execution and the stream sequence of its event. */
interface TaskWrite {
  taskExecId: string;
  seq: number;
  written: Promise<void>;
}

type Document = WorkflowDocument | TaskExecutionState;
type CachedDocument = { doc: Document; revision: number };

interface DocumentKind {
  read(key: string): Promise<{ doc?: Document; revision: number }>;
  /** The stored revision only: whether a cached document is still the stored one. */
  revision(key: string): Promise<number>;
  write(key: string, doc: Document, revision: number): Promise<number>;
  fold(doc: Document | undefined, event: StoredEvent, key: string): Document | undefined;
}

export class StateManager {
  private readonly queues = new Map<string, Queue>();
  private readonly taskWrites = new Map<string, Set<TaskWrite>>();
  private readonly cache = new Map<string, CachedDocument>();
  /** Every queue's coalescing window, on one timer. */
  private readonly windows = new WindowTimers();
  private readonly kinds: Record<"workflow" | "task", DocumentKind>;
  private consumer?: Consumer;
  private role?: ExclusiveRole;
  private readonly leases?: Leases;
  /** Folds in progress and when each began (see start). */
  private readonly inProgress = new Map<Delivery, number>();
  private heartbeat?: ReturnType<typeof setInterval>;
  private readonly endedTasks: EndedTasks;
  /** The ends this engine stored: what an end's check needs no read for (end_catch_up.ts). */
  private readonly ends = new StoredEnds();
  /** Turns for the ends written from the history (end_catch_up.ts). */
  private readonly repairs = new RepairTurns();
  private readonly ackWaitMs: number;
  private readonly takeOvers?: Pick<TakeOverCheck, "fences">;
  private readonly maxDeliveries: number;
  private readonly coalesceMs: number;
  private readonly runningWindowMs: number;
  private readonly catchUpAfterMs: number;

  constructor(
    private readonly bus: Bus,
    private readonly store: StateStore,
    options: StateManagerOptions = {},
  ) {
    this.ackWaitMs = options.ackWaitMs ?? STATE_ACK_WAIT_MS;
    this.maxDeliveries = options.maxDeliveries ?? MAX_FOLD_DELIVERIES;
    this.coalesceMs = options.coalesceMs ?? COALESCE_MS;
    this.runningWindowMs = options.runningWindowMs ?? RUNNING_WINDOW_MS;
    this.catchUpAfterMs = options.catchUpAfterMs ?? CATCH_UP_AFTER_MS;
    this.takeOvers = options.takeOvers;
    this.leases = options.leases;
    // Two ack waits: a dead engine's events come back after one, and may meet a second engine that dies.
    // Only the ends of executions whose task events a dead engine held wait that long.
    this.endedTasks = new EndedTasks(
      (key) => store.getTaskWithRevision(key),
      2 * this.ackWaitMs + 5_000,
      undefined,
      !store.replicated,
    );
    this.kinds = {
      workflow: {
        read: (key) => store.getWorkflowWithRevision(key),
        revision: (key) => store.revisionOf("workflows", key),
        write: (_key, doc, revision) => store.putWorkflow(doc as WorkflowDocument, revision),
        fold: (doc, event) => foldWorkflowDocument(doc as WorkflowDocument | undefined, event),
      },
      task: {
        read: (key) => store.getTaskWithRevision(key),
        revision: (key) => store.revisionOf("tasks", key),
        write: (key, doc, revision) => store.putTask(key, doc as TaskExecutionState, revision),
        // With its execution's fence as this engine last saw it: a take-over folded here fences the task's
        // zombie writes even before the task's document has seen an event of the new holder.
        fold: (doc, event, key) =>
          foldTaskDocument(doc as TaskExecutionState | undefined, event, this.executionFence(key)),
      },
    };
  }

  async start(): Promise<void> {
    // One timer for every fold in progress: a fold past a third of the ack wait tells the server it is at work.
    this.heartbeat = setInterval(() => {
      const due = Date.now() - this.ackWaitMs / 3;
      for (const [delivery, since] of this.inProgress) if (since <= due) delivery.working();
    }, this.ackWaitMs / 3);
    if (!this.leases) {
      this.consumer = await this.consume();
      return;
    }
    this.role = new ExclusiveRole(this.leases, STATE_FOLDER_ROLE, () => this.consume());
    await this.role.start();
  }

  async stop(): Promise<void> {
    await this.consumer?.stop();
    await this.role?.stop();
    clearInterval(this.heartbeat);
  }

  private consume(): Promise<Consumer> {
    return this.bus.consume({
      stream: STREAMS.events,
      durable: STATE_CONSUMER,
      filterSubject: "compozy.*.*.evts.*.*",
      ackWaitMs: this.ackWaitMs,
      maxAckPending: 20_000,
      batch: 512,
      accept: (subject) => FOLDED.test(subject), // History only: acknowledged unread.
      handler: (message, delivery) => this.handle(message, delivery),
    });
  }

  private async handle(message: MessageShape<DescMessage>, delivery: Delivery): Promise<Outcome | void> {
    const seq = delivery.streamSequence;
    if (delivery.deliveryCount > this.maxDeliveries) {
      const reason = `state event not folded after ${this.maxDeliveries} deliveries`;
      log.error("{subject} (seq {seq}): {reason}", { subject: delivery.subject, seq, reason });
      await this.bus.deadLetter(delivery.subject, encode(schemaOf(message.$typeName), message), reason);
      return { term: reason };
    }
    this.inProgress.set(delivery, Date.now());
    try {
      await this.apply(message, delivery);
    } finally {
      this.inProgress.delete(delivery);
    }
  }

  private async apply(message: MessageShape<DescMessage>, delivery: Delivery): Promise<void> {
    const tokens = delivery.subject.split(".");
    const m = message as { workflow?: { execId: string }; task?: { execId: string } };
    const execId = m.workflow?.execId;
    if (!execId) return;
    const event: StoredEvent = {
      seq: delivery.streamSequence,
      subject: delivery.subject,
      type: `${tokens[2]}.${tokens[5]}`,
      time: timeOf(message),
      message,
    };
    // A paused engine's late outcome that the documents cannot tell (a take-over not folded here yet).
    if (await this.takeOvers?.fences(event)) return;
    const targets = documentsOf(event);
    const taskKey = targets.task && m.task?.execId ? `${execId}.${m.task.execId}` : undefined;
    const writes: Promise<void>[] = [];
    if (event.type === "task.waiting_started") {
      // A task that starts waiting is listed (the execution's document and the index of waits) before its
      // own document says WAITING: a broadcast sent once a query sees it waiting reaches it.
      const listed = this.enqueue("workflow", execId, event);
      writes.push(listed);
      if (taskKey) writes.push(this.enqueue("task", taskKey, event, listed));
    } else {
      // And the other way round at a wait's end (or a waiting task's outcome): its document says WAITING no
      // longer before its execution's document and the index drop the wait. A query that sees it waiting
      // after it ended would send a broadcast that finds it nowhere (up to an ack wait when the engine dies
      // between the two writes).
      const shown = taskKey ? this.enqueue("task", taskKey, event) : undefined;
      if (shown) writes.push(shown);
      const after = shown && WAIT_ENDS.has(event.type) ? shown : undefined;
      if (targets.workflow) writes.push(this.enqueue("workflow", execId, event, after));
    }
    await Promise.all(writes);
  }

  private enqueue(
    kind: "workflow" | "task",
    key: string,
    event: StoredEvent,
    after?: Promise<void>,
  ): Promise<void> {
    const written = new Promise<void>((resolve, reject) => {
      const id = `${kind}:${key}`;
      let queue = this.queues.get(id);
      if (!queue) this.queues.set(id, queue = { events: [], running: false });
      const lazy = this.isLazy(kind, key, event);
      queue.events.push({ event, done: (e) => e ? reject(e) : resolve(), after, lazy });
      if (!queue.running) {
        queue.running = true;
        this.openWindow(kind, key, id, queue, lazy);
      } else if (queue.window !== undefined && !lazy) {
        // A task's outcome is its document's last event: written now. Anything else ends a long window.
        if (kind === "task" && TASK_ENDS.has(event.type)) this.startDrain(kind, key, id, queue);
        else if (queue.lazy) {
          this.windows.close(queue.window);
          this.openWindow(kind, key, id, queue, false);
        }
      }
    });
    if (kind === "task") {
      const dot = key.indexOf(".");
      this.trackTaskWrite(key.slice(0, dot), { taskExecId: key.slice(dot + 1), seq: event.seq, written });
    }
    if (kind === "workflow" && ENDS.has(event.type)) this.expedite(key);
    return written;
  }

  /**
   * Starts the writes an execution's end waits for now, rather than at the end of their coalescing windows:
   * its tasks' documents, then its own. Nothing more would join them (the end is the execution's last
   * event), and a caller waiting for the end (`?wait`, a parent) would otherwise wait out a window on top
   * of the write (5 ms on every run, a tenth of a 20-step workflow's time through the API).
   */
  private expedite(execId: string): void {
    for (const write of this.taskWrites.get(execId) ?? []) {
      const key = `${execId}.${write.taskExecId}`;
      const queue = this.queues.get(`task:${key}`);
      if (queue) this.startDrain("task", key, `task:${key}`, queue);
    }
    const queue = this.queues.get(`workflow:${execId}`);
    if (queue) this.startDrain("workflow", execId, `workflow:${execId}`, queue);
  }

  private openWindow(kind: "workflow" | "task", key: string, id: string, queue: Queue, lazy: boolean): void {
    queue.lazy = lazy;
    queue.window = this.windows.open(
      lazy ? this.runningWindowMs : this.coalesceMs,
      () => this.startDrain(kind, key, id, queue),
    );
  }

  /**
   * Whether an event may wait the long window (RUNNING_WINDOW_MS): it records a task's progress only. For a
   * task's document, its dispatch and start (its outcome follows). For the execution's, a task's dispatch
   * or the outcome of a task the cached document does not list as waiting (either only lists the task);
   * a stale cache only makes the write wait: what is written is folded on the stored document.
   */
  private isLazy(kind: "workflow" | "task", key: string, event: StoredEvent): boolean {
    if (kind === "task") return event.type === "task.dispatched" || event.type === "task.started";
    if (event.type === "task.dispatched") return true;
    if (!TASK_ENDS.has(event.type) || event.type === "task.waiting_timed_out") return false;
    const doc = this.cache.get(`workflow:${key}`)?.doc as WorkflowDocument | undefined;
    const taskExecId = (event.message as { task?: { execId?: string } }).task?.execId;
    return !!doc && !!taskExecId && !(taskExecId in (doc.waiting ?? {}));
  }

  /** Ends a queue's coalescing window and drains it; a no-op once its drain has started. */
  private startDrain(kind: "workflow" | "task", key: string, id: string, queue: Queue): void {
    if (queue.window === undefined) return;
    this.windows.close(queue.window);
    queue.window = undefined;
    void this.drain(kind, key, id, queue);
  }

  /** Task writes of an execution not yet stored: its end waits for them (see afterTaskWrites). */
  private trackTaskWrite(execId: string, write: TaskWrite): void {
    let pending = this.taskWrites.get(execId);
    if (!pending) this.taskWrites.set(execId, pending = new Set());
    pending.add(write);
    // Its failure is the caller's to handle (the event is redelivered); here it only ends the tracking.
    write.written.catch(() => undefined).finally(() => {
      pending.delete(write);
      if (pending.size === 0 && this.taskWrites.get(execId) === pending) this.taskWrites.delete(execId);
    });
  }

  private async drain(kind: "workflow" | "task", key: string, id: string, queue: Queue): Promise<void> {
    while (queue.events.length) {
      const batch = queue.events.splice(0, batchLength(kind, queue.events));
      try {
        if (kind === "workflow") {
          await this.afterTaskWrites(key, batch, queue.events);
          takeBeforeEnd(batch, queue.events);
          await afterWaitsShownEnded(batch, queue.events);
        } else await batch[0].after;
        await this.write(kind, key, id, batch.map((b) => b.event));
        for (const b of batch) b.done();
      } catch (e) {
        for (const b of batch) b.done(e);
      }
      // What came during the write only records progress: it waits a window of its own, as it would have
      // on an idle queue (a collection's execution document is written a few times a second, not after
      // each of its writes).
      if (queue.events.length && queue.events.every((q) => q.lazy)) {
        this.openWindow(kind, key, id, queue, true);
        return;
      }
    }
    queue.running = false;
    this.queues.delete(id);
  }

  /**
   * An execution's end is written after its tasks' documents: a query that sees it ended sees its tasks
   * ended too. This engine's own earlier task writes are queued already (events arrive in stream order) and
   * are awaited; then the tasks the end lists as recorded (its driver's view, see TaskLedger), wherever
   * they were folded (EndedTasks: no request when this engine folded them all).
   */
  private async afterTaskWrites(execId: string, batch: Queued[], queued: Queued[]): Promise<void> {
    const end = batch.find((q) => ENDS.has(q.event.type))?.event;
    if (!end) return;
    const blocked = tasksStartingToWait(batch, queued);
    const earlier = [...this.taskWrites.get(execId) ?? []]
      .filter((w) => w.seq < end.seq && !blocked.has(w.taskExecId));
    const writes = await Promise.allSettled(earlier.map((w) => w.written));
    const failed = writes.find((w): w is PromiseRejectedResult => w.status === "rejected");
    // The failed task event comes back: so does the end, to be written after it.
    if (failed) {
      throw new Error(`end of ${execId} waits for a task event folded again`, { cause: failed.reason });
    }
    const recorded = endedTasksOf(end)?.recordedExecIds.filter((id) => !blocked.has(id)) ?? [];
    const correlationId = (end.message as { metadata?: { correlationId?: string } }).metadata?.correlationId;
    await this.endedTasks.wait(
      execId,
      recorded,
      async (ids) => this.storeEndedTasks(await this.historyOf(execId, correlationId || execId), execId, ids),
    );
  }

  /**
   * Resolves once the execution's document shows the end its history holds, written from the history when
   * the fold's write of it did not land in time (end_catch_up.ts).
   */
  catchUpEnd(execId: string, correlationId: string): Promise<void> {
    return catchUpEnd(
      {
        ends: this.ends,
        repairs: this.repairs,
        showsEnd: async (id) => isTerminal((await this.store.getWorkflow(id))?.status ?? "RUNNING"),
        writeEndFromHistory: (id, correlation) => this.writeEndFromHistory(id, correlation),
        replicated: this.store.replicated,
      },
      execId,
      correlationId,
      this.catchUpAfterMs,
    );
  }

  /**
   * Writes an execution's end from its history (end_catch_up.ts): the documents of its tasks that the history
   * shows ended first (a query that sees the end sees them ended), then its own, every event of the history
   * folded onto what is stored (an ended document stays as it is: an end is final). False when the history
   * holds no end.
   */
  private async writeEndFromHistory(execId: string, correlationId: string): Promise<boolean> {
    const history = await this.historyOf(execId, correlationId);
    if (!history.some((event) => ENDS.has(event.type))) return false;
    const tasks = new Set<string>();
    for (const event of history) {
      const taskExecId = taskExecIdOf(event);
      if (taskExecId && event.type.startsWith("task.")) tasks.add(taskExecId);
    }
    await this.storeEndedTasks(history, execId, [...tasks]);
    const id = `workflow:${execId}`;
    this.cache.delete(id);
    await this.write("workflow", execId, id, history.filter((event) => documentsOf(event).workflow));
    return true;
  }

  /** An execution's history, as the replay sees it: read without a consumer (direct gets), zombies left out. */
  private async historyOf(execId: string, correlationId: string): Promise<StoredEvent[]> {
    return withoutZombieWrites(await readExecutionEvents(this.bus.js, correlationId, execId));
  }

  /**
   * Folds the documents of `taskExecIds` again from the execution's history and stores each ended one over
   * what the bucket holds, unless that is ended already: what an end does for a task document left behind
   * by a lost update (ended_tasks.ts), and what an end written from the history does first.
   */
  private async storeEndedTasks(
    history: StoredEvent[],
    execId: string,
    taskExecIds: readonly string[],
  ): Promise<void> {
    for (const taskExecId of taskExecIds) {
      let doc: TaskExecutionState | undefined;
      for (const event of history) {
        const task = (event.message as { task?: { execId?: string } }).task;
        if (event.type.startsWith("task.") && task?.execId === taskExecId) {
          doc = foldTaskDocument(doc, event) as TaskExecutionState;
        }
      }
      if (!doc || !isTerminal(doc.status)) continue; // Its outcome is not in the history: nothing to store.
      const key = `${execId}.${taskExecId}`;
      this.cache.delete(`task:${key}`);
      const stored = await this.store.getTaskWithRevision(key);
      if (!stored.doc || !isTerminal(stored.doc.status)) await this.store.putTask(key, doc, stored.revision);
      this.written("task", key, doc);
    }
  }

  private async write(
    kind: "workflow" | "task",
    key: string,
    id: string,
    events: StoredEvent[],
  ): Promise<void> {
    const documents = this.kinds[kind];
    let lastError: unknown;
    for (let attempt = 0; attempt < 5; attempt++) {
      const cached = this.cache.get(id);
      // A task's dispatch is its first event: its document is created without being read first (when it
      // exists after all, an event taken again, the create is refused and the next attempt reads it).
      const fresh = attempt === 0 && kind === "task" && events[0].type === "task.dispatched";
      const current: { doc?: Document; revision: number } = cached ??
        (fresh ? { revision: 0 } : await documents.read(key));
      // Folded on a working copy that shares what folds never change in place (the input: a collection's
      // items), so a write costs the size of what changed, not of the execution's input (issue 11).
      let doc = current.doc ? foldCopy(current.doc) : undefined;
      for (const event of events) doc = documents.fold(doc, event, key);
      // A task's first events all fenced out (a paused engine's late writes): nothing to store.
      if (!doc && kind === "task") return;
      // An event folded before its execution's start (another engine holds the start): try again later.
      if (!doc) throw new Error(`state of ${key}: start not recorded yet`);
      if (!foldChanged(current.doc, doc)) {
        // "Nothing changed" is only trusted against the stored document: a cached one may be stale (another
        // engine wrote since). Checking its revision costs a read, not a write (nor a parse of the document).
        if (!cached) {
          if (current.doc && !isTerminal(current.doc.status)) this.remember(id, current as CachedDocument);
          this.written(kind, key, doc);
          return;
        }
        if ((await documents.revision(key)) === cached.revision) return;
        this.cache.delete(id); // Fold again on top of what is stored.
        continue;
      }
      try {
        const waits = kind === "workflow"
          ? waitChanges(current.doc as WorkflowDocument, doc as WorkflowDocument)
          : undefined;
        // The index of waits gains entries before the document and loses them after: it may briefly list a
        // wait that ended (findWaiting checks the document), never miss one that started. The entries to
        // remove are those stored before the write (see unindexWaits).
        if (waits?.added.length) await this.store.indexWaits(key, waits.added);
        const unlisted = waits?.removed.length ? await this.store.waitEntries(key, waits.removed) : [];
        // The same order for the index of executions by status: listed under the new status before the
        // document says it, under the old one until after (a listing checks the document).
        const previous = current.doc as WorkflowDocument | undefined;
        // (A first document is indexed by putWorkflow, however it is written.)
        const moved = kind === "workflow" && current.revision !== 0 && previous?.status !== doc.status;
        const parent = kind === "workflow" ? (doc as WorkflowDocument).parent?.exec_id : undefined;
        const listedAt = moved ? await this.store.indexStatus(doc as WorkflowDocument) : undefined;
        if (listedAt !== undefined) (doc as WorkflowDocument).index_seq = listedAt;
        const revision = await documents.write(key, doc, current.revision);
        if (unlisted.length) await this.store.unindexWaits(unlisted);
        if (listedAt !== undefined && previous) await this.unindexStatus(previous, listedAt);
        if (parent && isTerminal(doc.status)) await this.store.unindexChild(parent, key);
        if (isTerminal(doc.status)) this.cache.delete(id);
        else this.remember(id, { doc, revision });
        this.written(kind, key, doc);
        return;
      } catch (e) {
        this.cache.delete(id); // Another writer won (or the write failed): fold again on top of what is stored.
        lastError = e;
      }
    }
    throw new Error(`state of ${key}: too many concurrent writers`, { cause: lastError });
  }

  /** Keeps EndedTasks and StoredEnds current: a task document stored ended, an execution's end stored. */
  private written(kind: "workflow" | "task", key: string, doc: Document): void {
    if (!isTerminal(doc.status)) return;
    if (kind === "workflow") {
      this.ends.stored(key);
      return this.endedTasks.forget(key);
    }
    const dot = key.indexOf(".");
    this.endedTasks.stored(key.slice(0, dot), key.slice(dot + 1));
  }

  /** A failed removal leaves an entry the listing filters out by the document: logged, not fatal. */
  private async unindexStatus(previous: WorkflowDocument, listedAt: number): Promise<void> {
    await this.store.unindexStatus(previous, listedAt).catch((error) =>
      log.warn("Could not remove execution {exec_id} from the {status} index: {error}", {
        exec_id: previous.exec_id,
        status: previous.status,
        error,
      })
    );
  }

  /** The lease fence of the execution of task document `key`, from the cached execution document. */
  private executionFence(key: string): LeaseFence | undefined {
    const cached = this.cache.get(`workflow:${key.slice(0, key.indexOf("."))}`);
    return (cached?.doc as WorkflowDocument | undefined)?.lease;
  }

  private remember(id: string, value: CachedDocument): void {
    this.cache.delete(id);
    this.cache.set(id, value);
    if (this.cache.size > 5_000) this.cache.delete(this.cache.keys().next().value!);
  }
}

/**
 * Waits for the task writes that the wait ends of an execution's batch must follow (see apply). Not for a
 * task with a wait start in the batch or queued behind it: its task writes wait for that one's execution
 * write (a start redelivered after the end of its wait), which would never come. A task write that failed
 * holds nothing back: its event comes back and is folded into both documents again (as after an engine's
 * death between the two writes), and the other events of the batch are not failed with it.
 */
async function afterWaitsShownEnded(batch: Queued[], queued: Queued[]): Promise<void> {
  const blocked = tasksStartingToWait(batch, queued);
  const gates = batch.filter((q) => q.after && !blocked.has(taskExecIdOf(q.event))).map((q) => q.after);
  await Promise.allSettled(gates);
}

/**
 * Tasks with a wait start among an execution's events not written yet: their task writes wait for that
 * execution write (a wait start redelivered after the end, or with it), so it must not wait for them.
 */
function tasksStartingToWait(batch: Queued[], queued: Queued[]): Set<string | undefined> {
  return new Set(
    [...batch, ...queued].filter((q) => q.event.type === "task.waiting_started").map((q) =>
      taskExecIdOf(q.event)
    ),
  );
}

function taskExecIdOf(event: StoredEvent): string | undefined {
  return (event.message as { task?: { execId?: string } }).task?.execId;
}

/**
 * Moves into an end's batch the events of its execution queued behind it but stored before it (taken again
 * from an engine that died), in stream order: the ended document then lists every task (task_ids).
 */
function takeBeforeEnd(batch: Queued[], queued: Queued[]): void {
  const end = batch.find((q) => ENDS.has(q.event.type))?.event.seq;
  if (end === undefined || !queued.some((q) => q.event.seq < end)) return;
  batch.push(...queued.filter((q) => q.event.seq < end));
  queued.splice(0, queued.length, ...queued.filter((q) => q.event.seq >= end));
  batch.sort((a, b) => a.event.seq - b.event.seq);
}

/**
 * How many queued events go into the next write. A task write that must follow its execution's write
 * starts a batch of its own, so the task events before it never wait for that write; an execution's batch
 * ends at a wait that starts, so the task write waiting for it never waits for an end (which waits for
 * the task writes before it).
 */
function batchLength(kind: "workflow" | "task", events: Queued[]): number {
  if (kind === "task") {
    const gated = events.findIndex((q, i) => i > 0 && q.after);
    return gated === -1 ? events.length : gated;
  }
  const waits = events.findIndex((q) => q.event.type === "task.waiting_started");
  return waits === -1 ? events.length : waits + 1;
}

/** Signals waited for in `after` but not `before`, and the reverse. */
function waitChanges(before: WorkflowDocument | undefined, after: WorkflowDocument) {
  const was = new Set(Object.values(before?.waiting ?? {}).filter(Boolean));
  const is = new Set(Object.values(after.waiting ?? {}).filter(Boolean));
  return { added: [...is].filter((s) => !was.has(s)), removed: [...was].filter((s) => !is.has(s)) };
}

/** The tasks an end lists (absent in ends recorded before the list existed, or past its bound). */
function endedTasksOf(end: StoredEvent): { execIds: string[]; recordedExecIds: string[] } | undefined {
  return (end.message as { tasks?: { execIds: string[]; recordedExecIds: string[] } }).tasks;
}

function timeOf(message: MessageShape<DescMessage>): Date {
  const time = (message as { metadata?: { time?: { seconds: bigint; nanos: number } } }).metadata?.time;
  return time ? new Date(Number(time.seconds) * 1000 + Math.floor(time.nanos / 1e6)) : new Date();
}
