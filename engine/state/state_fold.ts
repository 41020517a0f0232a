/**
 * Folds state events into the execution state that queries read. A terminal status is final: a late or
 * duplicate event never moves a finished execution or task.
 */
import type { StoredEvent } from "../history/read_history.ts";
import { toExecutionError } from "../failure.ts";
import { parseJsonBytes } from "../json_bytes.ts";
import type * as pb from "../../pkg/pb/mod.ts";
import {
  type ExecutionState,
  isTerminal,
  type TaskExecutionState,
  type TaskStatusName,
  type WorkflowStatusName,
} from "./execution_state.ts";

type Any = Record<string, unknown> & {
  workflow?: pb.WorkflowInfo;
  task?: pb.TaskInfo;
  error?: pb.ErrorInfo;
  outputJson?: Uint8Array;
  inputJson?: Uint8Array;
  parent?: pb.ParentRef;
};

const WORKFLOW_EVENT_STATUS: Record<string, WorkflowStatusName> = {
  "workflow.started": "RUNNING",
  "workflow.paused": "PAUSED",
  "workflow.resumed": "RUNNING",
  "workflow.success": "SUCCESS",
  "workflow.failed": "FAILED",
  "workflow.canceled": "CANCELED",
  "workflow.timed_out": "TIMED_OUT",
};

const TASK_EVENT_STATUS: Record<string, TaskStatusName> = {
  "task.dispatched": "SCHEDULED",
  "task.started": "RUNNING",
  "task.waiting_started": "WAITING",
  "task.waiting_ended": "RUNNING",
  "task.retry_scheduled": "RETRY_SCHEDULED",
  "task.success": "SUCCESS",
  "task.failed": "FAILED",
  "task.canceled": "CANCELED",
  "task.timed_out": "TIMED_OUT",
  "task.waiting_timed_out": "FAILED",
};

/** Applies one event; returns the (new or same) state, or undefined when the event starts nothing. */
export function foldEvent(state: ExecutionState | undefined, event: StoredEvent): ExecutionState | undefined {
  const m = event.message as Any;
  const time = event.time.toISOString();
  if (event.type === "workflow.started") {
    if (state) return state;
    return {
      exec_id: m.workflow?.execId ?? "",
      workflow_id: m.workflow?.id ?? "",
      status: "RUNNING",
      input: parseJsonBytes(m.inputJson),
      output: null,
      error: null,
      started_at: time,
      ended_at: null,
      tasks: [],
      correlation_id: (m.metadata as pb.Metadata | undefined)?.correlationId ?? m.workflow?.execId ?? "",
      parent: m.parent?.workflow
        ? { exec_id: m.parent.workflow.execId, task_exec_id: m.parent.task?.execId ?? "" }
        : null,
    };
  }
  if (!state) return undefined;
  if (event.type.startsWith("workflow.")) return foldWorkflow(state, event.type, m, time);
  if (event.type.startsWith("task.")) return foldTask(state, event.type, m, time);
  return state;
}

function foldWorkflow(state: ExecutionState, type: string, m: Any, time: string): ExecutionState {
  const status = WORKFLOW_EVENT_STATUS[type];
  if (!status || isTerminal(state.status)) return state;
  state.status = status;
  if (type === "workflow.success") state.output = parseJsonBytes(m.outputJson);
  if (type === "workflow.failed" || type === "workflow.timed_out") state.error = toExecutionError(m.error);
  if (type === "workflow.canceled") {
    state.error = { message: String(m.reason || "canceled"), code: "canceled" };
  }
  if (isTerminal(status)) {
    state.ended_at = time;
    // A finished workflow's unfinished tasks will never finish: say so rather than leave them RUNNING.
    for (const task of state.tasks) {
      if (!isTerminal(task.status)) task.status = "CANCELED";
    }
  }
  return state;
}

function foldTask(state: ExecutionState, type: string, m: Any, time: string): ExecutionState {
  const status = TASK_EVENT_STATUS[type];
  const info = m.task;
  if (!status || !info?.execId) return state;
  let task = state.tasks.find((t) => t.exec_id === info.execId);
  if (!task) {
    task = {
      task_id: info.id,
      exec_id: info.execId,
      status,
      output: null,
      error: null,
      attempts: 0,
      started_at: null,
      ended_at: null,
      parent_exec_id: (m.parentTask as pb.TaskInfo | undefined)?.execId || null,
    };
    state.tasks.push(task);
  } else if (isTerminal(task.status)) {
    return state;
  }
  applyTaskEvent(state, task, type, status, m, time);
  return state;
}

function applyTaskEvent(
  state: ExecutionState,
  task: TaskExecutionState,
  type: string,
  status: TaskStatusName,
  m: Any,
  time: string,
): void {
  // Out-of-order history events (dispatched/started after the outcome) never move a task backwards.
  if (type === "task.dispatched" && task.status !== "SCHEDULED") return;
  task.status = status;
  if (type === "task.started") {
    task.attempts = Math.max(task.attempts, Number(m.attempt) || 1);
    task.started_at ??= time;
  }
  if (type === "task.waiting_started") {
    task.waiting_for = String(m.signalId || "") || null;
    task.started_at ??= time;
    if (state.status === "RUNNING") state.status = "WAITING";
  }
  if (type === "task.waiting_ended" || type === "task.waiting_timed_out") {
    task.waiting_for = null;
    if (state.status === "WAITING") state.status = "RUNNING";
  }
  if (type === "task.success") {
    task.output = parseJsonBytes(m.outputJson);
    task.attempts = Math.max(task.attempts, Number(m.attempt) || 1);
    if (m.skipped) task.status = "SKIPPED";
    const usage = m.usage as pb.TokenUsage | undefined;
    if (usage) {
      task.usage = {
        input_tokens: Number(usage.inputTokens),
        output_tokens: Number(usage.outputTokens),
        total_tokens: Number(usage.totalTokens),
      };
    }
  }
  if (type === "task.failed") {
    task.error = toExecutionError(m.error);
    task.attempts = Math.max(task.attempts, Number(m.attempt) || 1);
  }
  if (type === "task.waiting_timed_out") task.error = { message: "wait timed out", code: "wait_timeout" };
  if (isTerminal(task.status)) {
    task.ended_at = time;
    task.started_at ??= time;
    if (state.status === "WAITING" && !state.tasks.some((t) => t.status === "WAITING")) {
      state.status = "RUNNING";
    }
  }
}
