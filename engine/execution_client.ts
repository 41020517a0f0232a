/** The ExecutionClient over NATS: commands as messages, state from KV, history from the EVENTS stream. */
import { create, toJson } from "@bufbuild/protobuf";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import type { DescMessage } from "@bufbuild/protobuf";
import type { JetStreamClient } from "@nats-io/jetstream";
import { errors as natsErrors } from "@nats-io/transport-node";
import type { Bus, BusMessage } from "../pkg/nats/mod.ts";
import { BUCKETS, RequestError, schemaOf } from "../pkg/nats/mod.ts";
import {
  type AgentDelta,
  AgentDeltaSchema,
  WorkflowCancelSchema,
  WorkflowPauseSchema,
  WorkflowResumeSchema,
  WorkflowSignalSchema,
  WorkflowTriggerReplySchema,
  WorkflowTriggerSchema,
} from "../pkg/pb/mod.ts";
import type {
  EventPage,
  EventPageOptions,
  ExecutionClient,
  ExecutionPage,
  ListOptions,
  LiveDelta,
  TriggerOptions,
  TriggerResult,
} from "./client.ts";
import type { Project } from "./domain/project/mod.ts";
import {
  type EventFollowLostError,
  ExecutionConflictError,
  ExecutionNotFoundError,
  type FieldError,
  InputValidationError,
  NoEngineAnsweredError,
  UnknownWorkflowError,
} from "./errors.ts";
import { eventsOfExecution, readRunEvents, type StoredEvent } from "./history/read_history.ts";
import {
  DEFAULT_PAGE_EVENTS,
  formatEventCursor,
  MalformedCursorError,
  MAX_PAGE_EVENTS,
  parseEventCursor,
  readEventPage,
} from "./history/event_page.ts";
import { followEvents } from "./history/event_follow.ts";
import { withoutZombieWrites } from "./history/lease_fence.ts";
import { uuidv7 } from "./ids.ts";
import { jsonBytes } from "./json_bytes.ts";
import { type BroadcastTarget, broadcastTargets } from "./broadcast_targets.ts";
import { type KV, Kvm } from "@nats-io/kv";
import {
  type EventRecord,
  type ExecutionState,
  isTerminal,
  type WorkflowDocument,
} from "./state/execution_state.ts";
import { type EndWatchOptions, waitForTerminalDocument, watchEnd } from "./state/end_watch.ts";
import { watchTasks } from "./state/task_watch.ts";
import { getLogger } from "../pkg/logger/mod.ts";
import type { StateStore } from "./state/state_store.ts";

const log = getLogger(["engine", "client"]);

/** See NatsExecutionClient's triggerPatienceMs; docs/operations.md, "Fail-over". */
export const TRIGGER_PATIENCE_MS = 60_000;

/** A list's cursor is the last execution id of the previous page: a UUIDv7 (engine/ids.ts). */
const LIST_CURSOR_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** True for the server's "no responders": no connection subscribes to the subject (no engine there). */
function isNoResponders(e: unknown): boolean {
  return e instanceof natsErrors.NoRespondersError ||
    (e instanceof natsErrors.RequestError && e.isNoResponders());
}

export class NatsExecutionClient implements ExecutionClient {
  constructor(
    private readonly bus: Bus,
    private readonly js: JetStreamClient,
    private readonly store: StateStore,
    private readonly project: Project,
    /**
     * How long a trigger is sent again while no engine answers: an engine restarting (its start waits up to
     * 60 s for JetStream) or reconnecting after a node's death is waited for; past it, NoEngineAnsweredError.
     */
    private readonly triggerPatienceMs = TRIGGER_PATIENCE_MS,
  ) {}

  /** The idempotency bucket, opened at the first broadcast that has a delivery id. */
  private idempotencyKv?: KV;
  private async idempotency(): Promise<KV> {
    this.idempotencyKv ??= await new Kvm(this.bus.nc).open(BUCKETS.idempotency);
    return this.idempotencyKv;
  }

  trigger(workflowId: string, input: unknown, options: TriggerOptions = {}): Promise<TriggerResult> {
    if (!this.project.workflows.has(workflowId)) return Promise.reject(new UnknownWorkflowError(workflowId));
    return this.start(workflowId, uuidv7(), input, options);
  }

  async triggerAndWait(
    workflowId: string,
    input: unknown,
    options: TriggerOptions,
    timeoutMs: number,
  ): Promise<TriggerResult & { state: ExecutionState }> {
    if (!this.project.workflows.has(workflowId)) throw new UnknownWorkflowError(workflowId);
    const execId = uuidv7();
    // Subscribed before the trigger goes out on the same connection: every write of the new execution's
    // document reaches it (end_watch.ts), so the end needs no flush and no read.
    const watch = watchEnd(this.endWatchOptions(execId));
    // Its task documents' writes too: at its end, they have all arrived (task_watch.ts).
    const tasks = watchTasks(this.bus.nc, this.store.taskSubjectPrefix(execId));
    try {
      const started = await this.start(workflowId, execId, input, options);
      if (started.execId === execId) {
        const doc = await watch.until(timeoutMs, false);
        if (!doc) throw new ExecutionNotFoundError(execId);
        const seen = isTerminal(doc.status) ? tasks.documents(doc.task_ids) : undefined;
        return { ...started, state: seen ? this.store.joined(doc, seen) : await this.store.withTasks(doc) };
      }
      // A repeated key names an execution started before: it may have ended already, so it is read.
      const doc = await waitForTerminalDocument(this.endWatchOptions(started.execId), timeoutMs);
      if (!doc) throw new ExecutionNotFoundError(started.execId);
      return { ...started, state: await this.store.withTasks(doc) };
    } finally {
      watch.stop();
      tasks.stop();
    }
  }

  private async start(
    workflowId: string,
    execId: string,
    input: unknown,
    options: TriggerOptions,
  ): Promise<TriggerResult> {
    const startedAt = Date.now();
    // Only "no responders" so far: no engine received the trigger (see NoEngineAnsweredError).
    let unanswered = 0;
    let unreceived = true;
    let loggedAtMs = 0;
    const reply = await this.bus.request(
      create(WorkflowTriggerSchema, {
        metadata: this.bus.metadata(execId),
        workflow: { id: workflowId, execId },
        inputJson: jsonBytes(input ?? {}),
        idempotencyKey: options.idempotencyKey ?? "",
        triggerSource: options.source ?? "api",
        rerunOf: options.rerunOf ?? "",
      }),
      WorkflowTriggerReplySchema,
      {
        timeoutMs: 10_000,
        deadlineMs: this.triggerPatienceMs,
        onRetry: (attempt, error, elapsedMs) => {
          unanswered = attempt;
          if (!isNoResponders(error)) unreceived = false;
          // Said at once, then every 10 s: an operator sees why a trigger hangs (no engine, or a slow one).
          if (attempt === 1 || elapsedMs - loggedAtMs >= 10_000) {
            loggedAtMs = elapsedMs;
            log.warn(
              "Trigger of {workflow} ({execId}) not answered for {ms} ms ({error}); trying again until {bound} ms",
              {
                workflow: workflowId,
                execId,
                ms: elapsedMs,
                error: String(error),
                bound: this.triggerPatienceMs,
              },
            );
          }
        },
      },
    ).catch((e) => {
      if (e instanceof RequestError && isNoResponders(e.cause) && unreceived) {
        throw new NoEngineAnsweredError(workflowId, Date.now() - startedAt, unanswered + 1, e);
      }
      throw e;
    });
    if (reply.error) {
      if (reply.error.code === "unknown_workflow") throw new UnknownWorkflowError(workflowId);
      if (reply.error.code === "validation_failed") {
        const fields = (reply.error.details?.fields ?? []) as unknown as FieldError[];
        throw new InputValidationError(workflowId, fields);
      }
      throw new Error(`Cannot start workflow '${workflowId}': ${reply.error.message}`);
    }
    return { execId: reply.execId, duplicate: reply.duplicate };
  }

  get(execId: string): Promise<ExecutionState | undefined> {
    return this.store.get(execId);
  }

  async list(options: ListOptions = {}): Promise<ExecutionPage> {
    const limit = Math.min(Math.max(options.limit ?? 50, 1), 500);
    if (options.cursor !== undefined && !LIST_CURSOR_PATTERN.test(options.cursor)) {
      // Compared as an id, any string "worked": a mistyped cursor answered the first page (outside review B12).
      throw new MalformedCursorError(
        `Malformed cursor '${
          options.cursor.slice(0, 64)
        }': pass the next_cursor of the previous page as it is`,
      );
    }
    // Newest first; the cursor is the last id of the previous page. A filter reads the index, not every id.
    const filtered = options.workflowId !== undefined || options.status !== undefined;
    const all = filtered
      ? await this.store.idsBy(options.workflowId, options.status)
      : await this.store.ids();
    const ids = all.reverse().filter((id) => !options.cursor || id < options.cursor);
    const items: ExecutionState[] = [];
    let last: string | undefined;
    for (const id of ids) {
      last = id;
      const doc = await this.store.getWorkflow(id);
      if (!doc) continue;
      if (options.workflowId && doc.workflow_id !== options.workflowId) continue;
      if (options.status && doc.status !== options.status) continue;
      items.push(await this.store.withTasks(doc));
      if (items.length === limit) break;
    }
    const more = items.length === limit && last !== ids[ids.length - 1];
    return { items, next_cursor: more ? last! : null };
  }

  async events(execId: string): Promise<EventRecord[]> {
    const state = await this.require(execId);
    const events = await readRunEvents(this.js, state.correlation_id);
    // The execution's history as the replay sees it: without a paused engine's late writes.
    return withoutZombieWrites(eventsOfExecution(events, execId)).map(toRecord);
  }

  async eventPage(execId: string, options: EventPageOptions = {}): Promise<EventPage> {
    const cursor = options.cursor === undefined ? undefined : parseEventCursor(execId, options.cursor);
    const limit = Math.min(Math.max(options.limit ?? DEFAULT_PAGE_EVENTS, 1), MAX_PAGE_EVENTS);
    const state = await this.require(execId);
    const page = await readEventPage(this.js, state.correlation_id, execId, cursor, limit);
    return {
      events: page.events.map(toRecord),
      next_cursor: page.next ? formatEventCursor(execId, page.next) : null,
    };
  }

  async watchEvents(
    execId: string,
    onEvent: (event: EventRecord) => void | Promise<void>,
    onLost: (error: EventFollowLostError) => void,
  ): Promise<() => void> {
    const state = await this.require(execId);
    const follow = await followEvents(
      this.js,
      state.correlation_id,
      execId,
      (event) => onEvent(toRecord(event)),
      onLost,
    );
    return () => follow.stop();
  }

  async watchDeltas(execId: string, onDelta: (delta: LiveDelta) => void): Promise<() => void> {
    const state = await this.require(execId);
    const subscription = this.bus.subscribe(
      `compozy.${state.correlation_id}.agent.live.*.delta`,
      (message, subject) => {
        const delta = message as AgentDelta;
        if (delta.workflow?.execId !== execId) return;
        onDelta({
          subject,
          type: "agent.delta",
          time: (delta.metadata?.time ? timestampDate(delta.metadata.time) : new Date()).toISOString(),
          data: toJson(AgentDeltaSchema, delta, { alwaysEmitImplicit: false }),
        });
      },
    );
    return () => subscription.unsubscribe();
  }

  /** Event-driven (see end_watch.ts): a subscription on the document's KV subject, then one read. */
  async waitForEnd(execId: string, timeoutMs: number): Promise<ExecutionState> {
    const doc = await waitForTerminalDocument(this.endWatchOptions(execId), timeoutMs);
    if (!doc) throw new ExecutionNotFoundError(execId);
    return await this.store.withTasks(doc);
  }

  private endWatchOptions(execId: string): EndWatchOptions {
    return {
      nc: this.bus.nc,
      subject: this.store.workflowSubject(execId),
      read: () => this.store.getWorkflow(execId),
      onReconnect: (wake) => this.bus.onReconnect(wake),
      onReadError: (error) =>
        log.warn("Reading execution {exec_id} while waiting for its end failed: {error}", {
          exec_id: execId,
          error,
        }),
    };
  }

  async cancel(execId: string, reason = "canceled by request"): Promise<void> {
    const state = await this.requireRunning(execId, "cancel");
    await this.bus.publish(create(WorkflowCancelSchema, { ...this.address(state), reason }));
  }

  async pause(execId: string): Promise<void> {
    const state = await this.requireRunning(execId, "pause");
    await this.bus.publish(create(WorkflowPauseSchema, this.address(state)));
  }

  async resume(execId: string): Promise<void> {
    const state = await this.requireRunning(execId, "resume");
    await this.bus.publish(create(WorkflowResumeSchema, this.address(state)));
  }

  async signal(execId: string, signalId: string, payload: unknown, deliveryId?: string): Promise<void> {
    await this.sendSignal(await this.requireRunning(execId, "signal"), signalId, payload, deliveryId);
  }

  /**
   * Signals the executions that the index of waits lists as waiting, from the documents it confirmed them by,
   * as a `signal` task does (services.ts). Read again, one that ended since (its wait's time-out, a cancel)
   * was refused like a signal to it through the API: the broadcast failed with ExecutionConflictError and
   * the executions listed after it were never signaled. An execution that ended takes no signal.
   */
  async broadcastSignal(signalId: string, payload: unknown, deliveryId?: string): Promise<string[]> {
    const find = async () =>
      (await this.store.findWaiting(signalId)).map((doc) => ({
        exec_id: doc.exec_id,
        workflow_id: doc.workflow_id,
        correlation_id: doc.correlation_id,
      }));
    // With a delivery id, a retry goes to the executions the first request went to (broadcast_targets.ts).
    const waiting = deliveryId === undefined
      ? await find()
      : await broadcastTargets(await this.idempotency(), deliveryId, this.bus.maxBody(), find);
    for (const state of waiting) {
      // One id per target: the stream would drop a second target's copy under the first one's id.
      await this.sendSignal(state, signalId, payload, deliveryId && `${deliveryId}:${state.exec_id}`);
    }
    return waiting.map((s) => s.exec_id);
  }

  /**
   * The message's event id is its delivery id when the caller gave one: the stream's duplicate window and the
   * target's record of the signals its waits took (execution_driver.ts `deliverSignal`) both key on it.
   */
  private async sendSignal(
    state: BroadcastTarget,
    signalId: string,
    payload: unknown,
    deliveryId: string | undefined,
  ): Promise<void> {
    await this.bus.publish(create(WorkflowSignalSchema, {
      ...this.address(state, deliveryId),
      signalId,
      payloadJson: jsonBytes(payload ?? null),
    }));
  }

  private address(state: BroadcastTarget, eventId?: string) {
    return {
      metadata: this.bus.metadata(state.correlation_id, eventId),
      workflow: { id: state.workflow_id, execId: state.exec_id },
    };
  }

  private async require(execId: string): Promise<WorkflowDocument> {
    const doc = await this.store.getWorkflow(execId);
    if (!doc) throw new ExecutionNotFoundError(execId);
    return doc;
  }

  private async requireRunning(execId: string, action: string): Promise<WorkflowDocument> {
    const state = await this.require(execId);
    if (isTerminal(state.status)) throw new ExecutionConflictError(execId, state.status, action);
    return state;
  }
}

function toRecord(event: StoredEvent): EventRecord {
  const message = event.message as BusMessage;
  const data = toJson(schemaOf(message.$typeName) as DescMessage, message as never, {
    alwaysEmitImplicit: false,
  });
  return {
    seq: event.seq,
    subject: event.subject,
    type: event.type,
    time: event.time.toISOString(),
    data: readable(data),
  };
}

/** JSON payload fields travel as bytes (base64 in canonical JSON); show them as the JSON they carry. */
function readable(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(readable);
  if (!value || typeof value !== "object") return value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    if (k.endsWith("Json") && typeof v === "string") {
      try {
        out[k.slice(0, -4)] = JSON.parse(atob(v));
        continue;
      } catch {
        // Not JSON after all: keep the raw field.
      }
    }
    out[k] = readable(v);
  }
  return out;
}
