/**
 * What the API service and the CLI may ask of the engine. Everything goes over NATS (commands) or reads
 * JetStream (state and history); no caller holds a reference to engine internals.
 */
import type { EventFollowLostError } from "./errors.ts";
import type { EventRecord, ExecutionState, WorkflowStatusName } from "./state/execution_state.ts";

export interface TriggerOptions {
  idempotencyKey?: string;
  /** "api", "webhook", "schedule", "cli". */
  source?: string;
  /** The execution this start re-runs; the new state names it as `rerun_of`. */
  rerunOf?: string;
}

export interface TriggerResult {
  execId: string;
  /** True when the idempotency key had already started an execution: execId is the first one's. */
  duplicate: boolean;
}

export interface ListOptions {
  workflowId?: string;
  status?: WorkflowStatusName;
  /** Opaque cursor returned by the previous page. */
  cursor?: string;
  limit?: number;
}

export interface ExecutionPage {
  items: ExecutionState[];
  next_cursor: string | null;
}

export interface EventPageOptions {
  /** The `next_cursor` of the previous page; default the history's start. */
  cursor?: string;
  /** At most this many events (see engine/history/event_page.ts for the default and the bounds). */
  limit?: number;
}

/** A page of an execution's history; `next_cursor` is null when no more events are stored (for now). */
export interface EventPage {
  events: EventRecord[];
  next_cursor: string | null;
}

/**
 * A piece of a running agent's reply text (`AgentDelta`, proto/agent.proto) as live views receive it: like
 * an {@link EventRecord} but never stored, so it has no sequence number.
 */
export interface LiveDelta {
  subject: string;
  /** Always `agent.delta`. */
  type: "agent.delta";
  time: string;
  /** The `AgentDelta` in its canonical JSON form (`turn`, `seq`, `text`, the entity blocks). */
  data: unknown;
}

export interface ExecutionClient {
  /** Starts an execution. Throws UnknownWorkflowError, InputValidationError (with the failing fields). */
  trigger(workflowId: string, input: unknown, options?: TriggerOptions): Promise<TriggerResult>;
  get(execId: string): Promise<ExecutionState | undefined>;
  list(options?: ListOptions): Promise<ExecutionPage>;
  /** The execution's history in order. Throws ExecutionNotFoundError. */
  events(execId: string): Promise<EventRecord[]>;
  /**
   * A bounded page of the history in order, from the start or a previous page's cursor. Throws
   * ExecutionNotFoundError, MalformedCursorError.
   */
  eventPage(execId: string, options?: EventPageOptions): Promise<EventPage>;
  /**
   * Follows the history live (after replaying what is stored); returns a stop function. `onLost` is called
   * at most once, when the follow ends before it is stopped (nothing more will come): the caller must end
   * what it feeds, not wait on. `onEvent` returns a promise when it can take no more for now: nothing more
   * is read until it settles (a slow reader holds the follow back instead of piling the history up in
   * memory). Throws ExecutionNotFoundError.
   */
  watchEvents(
    execId: string,
    onEvent: (event: EventRecord) => void | Promise<void>,
    onLost: (error: EventFollowLostError) => void,
  ): Promise<() => void>;
  /**
   * Follows the live text deltas of the execution's agent calls (its own, not its sub-workflows'), from now
   * on: they are never stored. Returns a stop function. Throws ExecutionNotFoundError.
   */
  watchDeltas(execId: string, onDelta: (delta: LiveDelta) => void): Promise<() => void>;
  /** Resolves when the execution is terminal or the time runs out, with the state at that moment. */
  waitForEnd(execId: string, timeoutMs: number): Promise<ExecutionState>;
  /**
   * `trigger`, then `waitForEnd` of the execution it started (the first one's, for a repeated idempotency
   * key), watched from before the start is sent: no read is needed to learn of the end.
   */
  triggerAndWait(
    workflowId: string,
    input: unknown,
    options: TriggerOptions,
    timeoutMs: number,
  ): Promise<TriggerResult & { state: ExecutionState }>;
  /** Control commands. Throw ExecutionNotFoundError, or ExecutionConflictError for a finished execution. */
  cancel(execId: string, reason?: string): Promise<void>;
  pause(execId: string): Promise<void>;
  resume(execId: string): Promise<void>;
  /**
   * `deliveryId` (a scoped `Idempotency-Key`) makes a repeated delivery one signal: the message carries it as
   * its id, which the stream drops within its duplicate window and a wait that took it drops after.
   */
  signal(execId: string, signalId: string, payload: unknown, deliveryId?: string): Promise<void>;
  /** Delivers to every execution waiting for the signal; returns their ids. `deliveryId` as for `signal`. */
  broadcastSignal(signalId: string, payload: unknown, deliveryId?: string): Promise<string[]>;
}
