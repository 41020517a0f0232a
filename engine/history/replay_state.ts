/**
 * What an execution's history says about it, in the form the driver replays from: its input, whether it
 * ended or is paused, and, per task key, the last recorded outcome. Replaying a task whose success is
 * recorded returns that output without running it again (the durability promise).
 */
import type { MessageShape } from "@bufbuild/protobuf";
import type * as pb from "../../pkg/pb/mod.ts";
import { parseJsonBytes } from "../json_bytes.ts";
import { withoutZombieWrites } from "./lease_fence.ts";
import type { StoredEvent } from "./read_history.ts";

export interface RecordedTask {
  execId: string;
  /** The last attempt that was started or scheduled. */
  attempt: number;
  /**
   * `woken`: the wait ended (a signal, a timer, a child's end) and that was recorded, but not yet the task's
   * outcome; a replay takes `wakePayload` instead of waiting again. `wait_timed_out`: likewise, by time-out.
   */
  status:
    | "running"
    | "waiting"
    | "woken"
    | "wait_timed_out"
    | "retry_scheduled"
    | "success"
    | "skipped"
    | "failed";
  wakePayload?: unknown;
  /** A `task.started` was recorded for `attempt`: a re-run after a crash is the next attempt. */
  started?: boolean;
  /** When `attempt` started (its `task.started` was stored): its `timeout` counts from there. */
  startedAtMs?: number;
  /**
   * The input recorded with `attempt`'s start, as stored (parsed only by a runner that takes it back on a
   * replay: a collection's items and kept indexes).
   */
  startedInputJson?: Uint8Array;
  /** Stream sequence of the terminal event: which of several branches ended first (a race's winner). */
  seq?: number;
  output?: unknown;
  /** A router's recorded route (TaskExecutionSuccess.route). */
  route?: string;
  error?: pb.ErrorInfo;
  waitingFor?: string;
  /** The stream sequence of its wait's start (see ReplayState.takenSignals). */
  waitingSeq?: number;
  deadlineMs?: number;
  /** When the attempt a `task.retry_scheduled` announced is due (its time plus its delay). */
  retryDueMs?: number;
  /** An agent task's token usage, as its recorded success or failure reports it. */
  usage?: pb.TokenUsage;
}

export interface ReplayState {
  workflowId: string;
  input: unknown;
  parent?: { execId: string; workflowId: string; taskId: string; taskExecId: string };
  startedAt?: Date;
  ended: boolean;
  /** How it ended, when it has. */
  outcome?: { status: string; output: unknown; error?: { message: string; code: string } };
  paused: boolean;
  tasks: Map<string, RecordedTask>;
  /**
   * The message ids of the signals its waits took (`task.waiting_ended`'s `signal_message_id`), each with its
   * signal and the stream sequence of its first take: a copy sent again is not a second signal
   * (ExecutionDriver.deliverSignal), but one signal ends every wait open for it, and a message delivered again
   * after only some of those ends were recorded (a crash, a lost lease between two records) still ends the
   * waits open before that first take (`copyMayEnd`).
   */
  takenSignals: Map<string, { signalId: string; seq: number }>;
}

type Msg<T extends keyof Messages> = Messages[T];
interface Messages {
  "workflow.started": MessageShape<typeof pb.WorkflowExecutionStartedSchema>;
  "task.dispatched": MessageShape<typeof pb.TaskDispatchedSchema>;
  "task.started": MessageShape<typeof pb.TaskExecutionStartedSchema>;
  "task.success": MessageShape<typeof pb.TaskExecutionSuccessSchema>;
  "task.failed": MessageShape<typeof pb.TaskExecutionFailedSchema>;
  "task.retry_scheduled": MessageShape<typeof pb.TaskExecutionRetryScheduledSchema>;
  "task.waiting_started": MessageShape<typeof pb.TaskExecutionWaitingStartedSchema>;
  "task.waiting_ended": MessageShape<typeof pb.TaskExecutionWaitingEndedSchema>;
}

const WORKFLOW_TERMINAL = new Set([
  "workflow.success",
  "workflow.failed",
  "workflow.canceled",
  "workflow.timed_out",
]);

/**
 * Folds one execution's events (see eventsOfExecution) into its replay state. The late writes of an engine
 * that lost the lease while paused are not part of it (see lease_fence.ts).
 */
export function foldReplayState(events: StoredEvent[]): ReplayState | undefined {
  let state: ReplayState | undefined;
  for (const event of withoutZombieWrites(events)) {
    if (event.type === "workflow.started") {
      const m = event.message as Msg<"workflow.started">;
      state = {
        workflowId: m.workflow?.id ?? "",
        input: parseJsonBytes(m.inputJson),
        parent: m.parent?.workflow
          ? {
            execId: m.parent.workflow.execId,
            workflowId: m.parent.workflow.id,
            taskId: m.parent.task?.id ?? "",
            taskExecId: m.parent.task?.execId ?? "",
          }
          : undefined,
        startedAt: event.time,
        ended: false,
        paused: false,
        tasks: new Map(),
        takenSignals: new Map(),
      };
      continue;
    }
    if (!state) continue;
    if (event.type === "task.waiting_ended") foldTakenSignal(state, event);
    if (WORKFLOW_TERMINAL.has(event.type)) {
      // The first end is the end: a late failure (a command given up after the end) changes nothing.
      if (!state.ended) state.outcome = terminalOutcome(event);
      state.ended = true;
    } else if (event.type === "workflow.paused") state.paused = true;
    else if (event.type === "workflow.resumed") state.paused = false;
    else if (event.type.startsWith("task.")) foldTask(state, event);
  }
  return state;
}

/** Records the first take of the signal message that ended a wait (before the wait's own record is folded). */
function foldTakenSignal(state: ReplayState, event: StoredEvent): void {
  const ended = event.message as Msg<"task.waiting_ended">;
  const messageId = ended.signalMessageId;
  const signalId = ended.task?.id ? state.tasks.get(ended.task.id)?.waitingFor : undefined;
  if (!messageId || signalId === undefined || state.takenSignals.has(messageId)) return;
  state.takenSignals.set(messageId, { signalId, seq: event.seq });
}

/**
 * Whether a copy of a taken signal message (ReplayState.takenSignals) may still end the recorded wait: it was
 * open for that signal before the message's first take and has not ended since (the engine stopped between
 * the records of the waits the message ended). A wait that started after it never takes it.
 */
export function copyMayEnd(taken: { signalId: string; seq: number }, record: RecordedTask): boolean {
  return record.status === "waiting" && record.waitingFor === taken.signalId &&
    record.waitingSeq !== undefined && record.waitingSeq < taken.seq;
}

/** Whether a recorded task has its outcome: success, skipped or failed (a terminal record is final). */
export function hasEnded(record: RecordedTask): boolean {
  return record.status === "success" || record.status === "skipped" || record.status === "failed";
}

function foldTask(state: ReplayState, event: StoredEvent): void {
  const m = event.message as { task?: { id: string; execId: string } };
  const key = m.task?.id;
  if (!key) return;
  const previous = state.tasks.get(key);
  // A terminal record is final: a late or duplicate event never moves it.
  if (previous && hasEnded(previous)) return;
  const record: RecordedTask = previous ?? { execId: m.task!.execId, attempt: 1, status: "running" };
  switch (event.type) {
    case "task.started": {
      const attempt = (event.message as Msg<"task.started">).attempt || 1;
      // A late started event of an earlier attempt (they are published without waiting) changes nothing.
      if (attempt < record.attempt) break;
      record.attempt = attempt;
      record.started = true;
      record.startedAtMs = event.time.getTime();
      const inputJson = (event.message as Msg<"task.started">).inputJson;
      record.startedInputJson = inputJson?.length ? inputJson : undefined;
      // A wait re-started by a replay is still waiting.
      if (record.status !== "waiting" && record.status !== "woken" && record.status !== "wait_timed_out") {
        record.status = "running";
      }
      break;
    }
    case "task.retry_scheduled":
      record.attempt = (event.message as Msg<"task.retry_scheduled">).nextAttempt;
      record.status = "retry_scheduled";
      record.retryDueMs = event.time.getTime() +
        Number((event.message as Msg<"task.retry_scheduled">).delayMs);
      record.started = false;
      record.startedAtMs = undefined;
      record.startedInputJson = undefined;
      record.wakePayload = undefined;
      break;
    case "task.waiting_started": {
      const w = event.message as Msg<"task.waiting_started">;
      record.status = "waiting";
      record.waitingFor = w.signalId;
      record.waitingSeq = event.seq;
      record.deadlineMs = Number(w.deadlineUnixMs) || undefined;
      break;
    }
    case "task.waiting_ended":
      record.status = "woken";
      record.wakePayload = parseJsonBytes((event.message as Msg<"task.waiting_ended">).payloadJson);
      break;
    case "task.waiting_timed_out":
      record.status = "wait_timed_out";
      break;
    case "task.success": {
      const s = event.message as Msg<"task.success">;
      record.status = s.skipped ? "skipped" : "success";
      record.output = parseJsonBytes(s.outputJson);
      record.seq = event.seq;
      record.usage = s.usage;
      record.route = s.route || undefined;
      break;
    }
    case "task.failed": {
      const f = event.message as Msg<"task.failed">;
      record.status = "failed";
      record.error = f.error;
      record.seq = event.seq;
      record.usage = f.usage;
      break;
    }
  }
  state.tasks.set(key, record);
}

function terminalOutcome(event: StoredEvent): ReplayState["outcome"] {
  const m = event.message as { outputJson?: Uint8Array; error?: pb.ErrorInfo; reason?: string };
  const status = event.type.slice("workflow.".length).toUpperCase();
  const error = m.error ? { message: m.error.message, code: m.error.code } : undefined;
  return { status, output: parseJsonBytes(m.outputJson), error };
}

/**
 * The replay state of an execution this process accepted and has not activated yet: its start, from the
 * execute command alone (no history to read). The start time keeps its milliseconds: the workflow's time-out
 * counts from it.
 */
export function replayStateOfExecute(execute: MessageShape<typeof pb.WorkflowExecuteSchema>): ReplayState {
  const parent = execute.parent?.workflow
    ? {
      execId: execute.parent.workflow.execId,
      workflowId: execute.parent.workflow.id,
      taskId: execute.parent.task?.id ?? "",
      taskExecId: execute.parent.task?.execId ?? "",
    }
    : undefined;
  const time = execute.metadata?.time;
  return {
    workflowId: execute.workflow?.id ?? "",
    input: parseJsonBytes(execute.inputJson),
    parent,
    startedAt: time === undefined
      ? new Date()
      : new Date(Number(time.seconds) * 1000 + Math.floor(time.nanos / 1_000_000)),
    ended: false,
    paused: false,
    tasks: new Map(),
    takenSignals: new Map(),
  };
}
