/**
 * An in-memory ExecutionClient for route tests: a real implementation of the contract (input validation,
 * idempotency, status rules, history, live watch, waits) without NATS. Tests drive executions to their end
 * with `finish`, or put them in a wait with `waitFor`; `outage` makes every call fail as NATS would.
 */
import { Ajv2020, type ErrorObject } from "ajv/dist/2020.js";
import type {
  EventPage,
  EventPageOptions,
  ExecutionClient,
  ExecutionPage,
  ListOptions,
  LiveDelta,
  TriggerOptions,
  TriggerResult,
} from "../../engine/client.ts";
import type { Project } from "../../engine/domain/project/types.ts";
import {
  type EventFollowLostError,
  ExecutionConflictError,
  ExecutionNotFoundError,
  InputValidationError,
  UnknownWorkflowError,
} from "../../engine/errors.ts";
import {
  type EventRecord,
  type ExecutionState,
  isTerminal,
  type WorkflowStatusName,
} from "../../engine/state/execution_state.ts";
import { NatsUnavailableError } from "../../pkg/nats/errors.ts";
import { DEFAULT_PAGE_EVENTS, formatEventCursor, parseEventCursor } from "../../engine/history/event_page.ts";

interface Execution {
  state: ExecutionState;
  events: EventRecord[];
  waitingFor?: string;
  triggerOptions: TriggerOptions;
}

export class MemoryExecutionClient implements ExecutionClient {
  /** When true, every call throws NatsUnavailableError. */
  outage = false;
  /** Every trigger call, in order, as the engine received it. */
  readonly triggers: Array<{ workflowId: string; input: unknown; options: TriggerOptions }> = [];
  private readonly executions = new Map<string, Execution>();
  private readonly keys = new Map<string, string>();
  private readonly watchers = new Map<string, Set<(e: EventRecord) => void>>();
  private readonly deltaWatchers = new Map<string, Set<(d: LiveDelta) => void>>();
  private readonly ajv = new Ajv2020({ allErrors: true, strict: false });
  private seq = 0;
  private counter = 0;

  constructor(private readonly project: Project) {}

  trigger(workflowId: string, input: unknown, options: TriggerOptions = {}): Promise<TriggerResult> {
    this.checkOutage();
    this.triggers.push({ workflowId, input, options });
    const workflow = this.project.workflows.get(workflowId);
    if (!workflow) throw new UnknownWorkflowError(workflowId);
    const first = options.idempotencyKey ? this.keys.get(options.idempotencyKey) : undefined;
    if (first) return Promise.resolve({ execId: first, duplicate: true });
    const schema = workflow.config.config?.input;
    if (schema) {
      const validate = this.ajv.compile(schema as object);
      if (!validate(input)) {
        throw new InputValidationError(workflowId, (validate.errors ?? []).map(fieldError));
      }
    }
    // Sortable like UUIDv7: newest last.
    const execId = `exec-${String(++this.counter).padStart(6, "0")}`;
    if (options.idempotencyKey) this.keys.set(options.idempotencyKey, execId);
    const now = new Date().toISOString();
    this.executions.set(execId, {
      state: {
        exec_id: execId,
        workflow_id: workflowId,
        status: "RUNNING",
        input,
        output: null,
        error: null,
        started_at: now,
        ended_at: null,
        tasks: [],
        correlation_id: execId,
        rerun_of: options.rerunOf ?? null,
      },
      events: [],
      triggerOptions: options,
    });
    this.record(execId, "started", { input });
    return Promise.resolve({ execId, duplicate: false });
  }

  get(execId: string): Promise<ExecutionState | undefined> {
    this.checkOutage();
    const state = this.executions.get(execId)?.state;
    return Promise.resolve(state ? structuredClone(state) : undefined);
  }

  list(options: ListOptions = {}): Promise<ExecutionPage> {
    this.checkOutage();
    const all = [...this.executions.values()].map((e) => e.state)
      .filter((s) => !options.workflowId || s.workflow_id === options.workflowId)
      .filter((s) => !options.status || s.status === options.status)
      .reverse();
    const start = options.cursor ? Number(options.cursor) : 0;
    const limit = options.limit ?? 50;
    const items = all.slice(start, start + limit);
    const next = start + limit < all.length ? String(start + limit) : null;
    return Promise.resolve({ items: structuredClone(items), next_cursor: next });
  }

  events(execId: string): Promise<EventRecord[]> {
    return Promise.resolve([...this.find(execId).events]);
  }

  eventPage(execId: string, options: EventPageOptions = {}): Promise<EventPage> {
    const after = options.cursor === undefined ? 0 : parseEventCursor(execId, options.cursor).afterSeq;
    const rest = this.find(execId).events.filter((e) => e.seq > after);
    const events = rest.slice(0, options.limit ?? DEFAULT_PAGE_EVENTS);
    const more = events.length < rest.length;
    return Promise.resolve({
      events,
      next_cursor: more ? formatEventCursor(execId, { afterSeq: events.at(-1)!.seq }) : null,
    });
  }

  /** Never lost, never held back: the events are in memory already. */
  watchEvents(
    execId: string,
    onEvent: (event: EventRecord) => void | Promise<void>,
    _onLost: (error: EventFollowLostError) => void,
  ): Promise<() => void> {
    const execution = this.find(execId);
    for (const event of execution.events) onEvent(event);
    const set = this.watchers.get(execId) ?? new Set();
    set.add(onEvent);
    this.watchers.set(execId, set);
    return Promise.resolve(() => set.delete(onEvent));
  }

  /** Live deltas are not stored: only watchers present when {@link emitDelta} is called see one. */
  watchDeltas(execId: string, onDelta: (delta: LiveDelta) => void): Promise<() => void> {
    this.find(execId);
    const set = this.deltaWatchers.get(execId) ?? new Set();
    set.add(onDelta);
    this.deltaWatchers.set(execId, set);
    return Promise.resolve(() => set.delete(onDelta));
  }

  emitDelta(execId: string, delta: LiveDelta): void {
    for (const watcher of this.deltaWatchers.get(execId) ?? []) watcher(delta);
  }

  async triggerAndWait(
    workflowId: string,
    input: unknown,
    options: TriggerOptions,
    timeoutMs: number,
  ): Promise<TriggerResult & { state: ExecutionState }> {
    const started = await this.trigger(workflowId, input, options);
    return { ...started, state: await this.waitForEnd(started.execId, timeoutMs) };
  }

  async waitForEnd(execId: string, timeoutMs: number): Promise<ExecutionState> {
    const execution = this.find(execId);
    if (!isTerminal(execution.state.status)) {
      await new Promise<void>((resolve) => {
        let stop = () => {};
        const timer = setTimeout(() => {
          stop();
          resolve();
        }, timeoutMs);
        this.watchEvents(execId, () => {
          if (isTerminal(execution.state.status)) {
            clearTimeout(timer);
            stop();
            resolve();
          }
        }, () => {}).then((s) => stop = s);
      });
    }
    return structuredClone(execution.state);
  }

  cancel(execId: string, reason?: string): Promise<void> {
    const execution = this.requireActive(execId, "cancel");
    this.end(execution, "CANCELED", null, { reason: reason ?? "" });
    return Promise.resolve();
  }

  pause(execId: string): Promise<void> {
    const execution = this.requireActive(execId, "pause");
    if (execution.state.status === "PAUSED") throw new ExecutionConflictError(execId, "PAUSED", "pause");
    execution.state.status = "PAUSED";
    this.record(execId, "paused", {});
    return Promise.resolve();
  }

  resume(execId: string): Promise<void> {
    const execution = this.find(execId);
    if (execution.state.status !== "PAUSED") {
      throw new ExecutionConflictError(execId, execution.state.status, "resume");
    }
    execution.state.status = execution.waitingFor ? "WAITING" : "RUNNING";
    this.record(execId, "resumed", {});
    return Promise.resolve();
  }

  signal(execId: string, signalId: string, payload: unknown): Promise<void> {
    const execution = this.requireActive(execId, "signal");
    if (execution.waitingFor === signalId && execution.state.status === "WAITING") {
      execution.waitingFor = undefined;
      this.end(execution, "SUCCESS", payload, {});
    }
    return Promise.resolve();
  }

  async broadcastSignal(signalId: string, payload: unknown): Promise<string[]> {
    this.checkOutage();
    const waiting = [...this.executions.values()].filter((e) =>
      e.waitingFor === signalId && e.state.status === "WAITING"
    );
    for (const e of waiting) await this.signal(e.state.exec_id, signalId, payload);
    return waiting.map((e) => e.state.exec_id);
  }

  // ---- Test controls ----

  /** Ends an execution as the engine would. */
  finish(execId: string, status: WorkflowStatusName, output: unknown = null): void {
    this.end(this.find(execId), status, output, {});
  }

  /** Puts an execution in a wait for `signalId`; a matching signal ends it with the payload as output. */
  waitFor(execId: string, signalId: string): void {
    const execution = this.find(execId);
    execution.waitingFor = signalId;
    execution.state.status = "WAITING";
    this.record(execId, "waiting", { signal_id: signalId }, "task");
  }

  triggerOptionsOf(execId: string): TriggerOptions {
    return this.find(execId).triggerOptions;
  }

  private end(execution: Execution, status: WorkflowStatusName, output: unknown, data: object): void {
    execution.state.status = status;
    execution.state.output = output;
    execution.state.ended_at = new Date().toISOString();
    if (status === "FAILED") execution.state.error = { message: "failed", code: "test" };
    this.record(execution.state.exec_id, status.toLowerCase(), { output, ...data });
  }

  private record(execId: string, type: string, data: unknown, component = "workflow"): void {
    const execution = this.executions.get(execId)!;
    const event: EventRecord = {
      seq: ++this.seq,
      subject: `compozy.${execId}.${component}.evts.${execId}.${type}`,
      type: `${component}.${type}`,
      time: new Date().toISOString(),
      data,
    };
    execution.events.push(event);
    for (const watcher of this.watchers.get(execId) ?? []) watcher(event);
  }

  private find(execId: string): Execution {
    this.checkOutage();
    const execution = this.executions.get(execId);
    if (!execution) throw new ExecutionNotFoundError(execId);
    return execution;
  }

  private requireActive(execId: string, action: string): Execution {
    const execution = this.find(execId);
    if (isTerminal(execution.state.status)) {
      throw new ExecutionConflictError(execId, execution.state.status, action);
    }
    return execution;
  }

  private checkOutage(): void {
    if (this.outage) throw new NatsUnavailableError("Cannot reach NATS (simulated outage)", "nats://test");
  }
}

function fieldError(e: ErrorObject): { path: string; message: string } {
  const missing = e.keyword === "required"
    ? `/${(e.params as { missingProperty: string }).missingProperty}`
    : "";
  return { path: `${e.instancePath}${missing}`, message: e.message ?? e.keyword };
}
