/**
 * Folds state events into the documents that queries read: one per execution (workflow events, and the
 * waits of its tasks) and one per task execution. A terminal status is final: a late or duplicate event
 * never moves a finished execution or task.
 */
import type { StoredEvent } from "../history/read_history.ts";
import { isFenced, type LeaseFence, raiseFence, TAKEN_OVER } from "../history/lease_fence.ts";
import { toExecutionError } from "../failure.ts";
import { parseJsonBytes } from "../json_bytes.ts";
import type * as pb from "../../pkg/pb/mod.ts";
import {
  isTerminal,
  MAX_LISTED_TASKS,
  type TaskDocument,
  type TaskExecutionState,
  type TaskStatusName,
  type WorkflowDocument,
  type WorkflowStatusName,
} from "./execution_state.ts";

type Any = Record<string, unknown> & {
  metadata?: pb.Metadata;
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
  // Not the task's end: its failure (`task.failed`) or its retry (a wait with `retry`) follows.
  "task.waiting_timed_out": "RUNNING",
};

/** Task events that change the execution's document too (its waits). */
const WAIT_EVENTS = new Set([
  "task.waiting_started",
  "task.waiting_ended",
  "task.waiting_timed_out",
  "task.success",
  "task.failed",
  "task.canceled",
]);

/**
 * Which documents an event changes: the execution's, its task's, or both. A task's dispatch lists it in the
 * execution's document (task_ids); a task whose dispatch was lost (it is published unawaited) is listed by
 * its outcome or its wait, which change the execution's document anyway.
 */
export function documentsOf(event: StoredEvent): { workflow: boolean; task: boolean } {
  if (event.type.startsWith("workflow.")) return { workflow: true, task: false };
  return {
    workflow: WAIT_EVENTS.has(event.type) || event.type === "task.dispatched",
    task: event.type in TASK_EVENT_STATUS,
  };
}

/** The fields of a document that a fold changes in place; it only ever replaces the others. */
const CHANGED_IN_PLACE = ["waiting", "wait_seq", "task_ids"] as const;

/**
 * A working copy of a document for the folds to change, leaving `doc` (a cached or a stored one) as it was.
 * Only what a fold changes in place is copied (the waits, their sequences, the list of tasks); the rest is
 * shared, the execution's input above all: a collection's items, which a deep copy on every write of the
 * execution's document made O(items) per write (issue 11).
 */
export function foldCopy<D extends WorkflowDocument | TaskDocument>(doc: D): D {
  const copy: Record<string, unknown> = { ...doc };
  for (const field of CHANGED_IN_PLACE) {
    const value = copy[field];
    if (Array.isArray(value)) copy[field] = [...value];
    else if (value && typeof value === "object") copy[field] = { ...value };
  }
  return copy as D;
}

/**
 * Whether folding changed a document (`after`, folded on foldCopy(`before`)): field by field, a field the
 * fold left as it was (the same value) never serialized; a replaced or copied one compared by its JSON.
 */
export function foldChanged(
  before: WorkflowDocument | TaskDocument | undefined,
  after: WorkflowDocument | TaskDocument,
): boolean {
  if (!before) return true;
  const a = before as unknown as Record<string, unknown>;
  const b = after as unknown as Record<string, unknown>;
  for (const field of new Set([...Object.keys(a), ...Object.keys(b)])) {
    if (a[field] !== b[field] && JSON.stringify(a[field]) !== JSON.stringify(b[field])) return true;
  }
  return false;
}

/** The initial document of an execution, as its start describes it. */
export function startedDocument(m: pb.WorkflowExecutionStarted | Any, time: string): WorkflowDocument {
  const message = m as Any;
  return {
    exec_id: message.workflow?.execId ?? "",
    workflow_id: message.workflow?.id ?? "",
    status: "RUNNING",
    input: parseJsonBytes(message.inputJson),
    output: null,
    error: null,
    started_at: time,
    ended_at: null,
    correlation_id: message.metadata?.correlationId || message.workflow?.execId || "",
    parent: message.parent?.workflow
      ? { exec_id: message.parent.workflow.execId, task_exec_id: message.parent.task?.execId ?? "" }
      : null,
    rerun_of: (message.rerunOf as string | undefined) || null,
    waiting: {},
    task_ids: [],
  };
}

/** Applies an event to an execution's document; undefined when there is none yet and this is no start. */
export function foldWorkflowDocument(
  doc: WorkflowDocument | undefined,
  event: StoredEvent,
): WorkflowDocument | undefined {
  const m = event.message as Any;
  const time = event.time.toISOString();
  if (event.type === "workflow.started") return doc ?? startedDocument(m, time);
  if (!doc) return undefined;
  // A paused engine's late write, stored after another engine took the execution over: not its history.
  if (isFenced(doc.lease, event)) return doc;
  const lease = raiseFence(doc.lease, event);
  if (lease !== doc.lease && !isTerminal(doc.status)) doc.lease = lease;
  if (event.type === TAKEN_OVER) return doc;
  if (event.type.startsWith("task.")) {
    listTask(doc, m.task?.execId);
    return WAIT_EVENTS.has(event.type) ? foldWait(doc, event, m) : doc;
  }
  const status = WORKFLOW_EVENT_STATUS[event.type];
  if (!status || isTerminal(doc.status)) return doc;
  doc.status = status === "RUNNING" && Object.keys(doc.waiting).length ? "WAITING" : status;
  if (event.type === "workflow.success") doc.output = parseJsonBytes(m.outputJson);
  if (event.type === "workflow.failed" || event.type === "workflow.timed_out") {
    doc.error = toExecutionError(m.error);
  }
  if (event.type === "workflow.canceled") {
    doc.error = { message: String(m.reason || "canceled"), code: "canceled" };
  }
  if (isTerminal(status)) {
    doc.ended_at = time;
    doc.waiting = {};
    delete doc.wait_seq;
    // Its driver's list: a dispatch folded by another engine, or not yet, is listed all the same.
    for (const taskExecId of (m.tasks as pb.EndedTasks | undefined)?.execIds ?? []) listTask(doc, taskExecId);
  }
  return doc;
}

/** Adds a task execution to the document's list of its tasks; past the bound the list is dropped. */
function listTask(doc: WorkflowDocument, taskExecId: string | undefined): void {
  if (!taskExecId || !doc.task_ids || doc.task_ids.includes(taskExecId)) return;
  if (doc.task_ids.length >= MAX_LISTED_TASKS) delete doc.task_ids;
  else doc.task_ids.push(taskExecId);
}

/**
 * A task's wait events change the execution's waits. Each task's last applied wait event is remembered by
 * stream sequence, so a redelivered (or late) `waiting_started` never brings back a wait that ended.
 */
function foldWait(doc: WorkflowDocument, event: StoredEvent, m: Any): WorkflowDocument {
  const taskExecId = m.task?.execId;
  if (!taskExecId || isTerminal(doc.status)) return doc;
  const last = doc.wait_seq?.[taskExecId];
  if (last !== undefined && event.seq <= last) return doc;
  // Only tasks that waited are remembered (a task that never waited has no wait to bring back). A wait's
  // own events always are: its end may be folded before its start, which another engine held.
  if (event.type.startsWith("task.waiting_") || taskExecId in doc.waiting) {
    (doc.wait_seq ??= {})[taskExecId] = event.seq;
  }
  const type = event.type;
  if (type === "task.waiting_started") doc.waiting[taskExecId] = String(m.signalId ?? "");
  else delete doc.waiting[taskExecId];
  const waiting = Object.keys(doc.waiting).length > 0;
  if (waiting && doc.status === "RUNNING") doc.status = "WAITING";
  if (!waiting && doc.status === "WAITING") doc.status = "RUNNING";
  return doc;
}

/**
 * Applies an event to a task execution's document (created by its first event). `fence`: its execution's
 * (from its document, when known here): a paused engine's late write is ignored by it or by the task's own.
 */
export function foldTaskDocument(doc: TaskDocument | undefined, event: StoredEvent): TaskDocument;
export function foldTaskDocument(
  doc: TaskDocument | undefined,
  event: StoredEvent,
  fence: LeaseFence | undefined,
): TaskDocument | undefined;
export function foldTaskDocument(
  doc: TaskDocument | undefined,
  event: StoredEvent,
  fence?: LeaseFence,
): TaskDocument | undefined {
  if (isFenced(fence, event) || isFenced(doc?.lease, event)) return doc;
  const m = event.message as Any;
  const time = event.time.toISOString();
  const status = TASK_EVENT_STATUS[event.type];
  const task: TaskDocument = doc ?? {
    task_id: m.task?.id ?? "",
    exec_id: m.task?.execId ?? "",
    status,
    output: null,
    error: null,
    attempts: 0,
    started_at: null,
    ended_at: null,
    parent_exec_id: (m.parentTask as pb.TaskInfo | undefined)?.execId || null,
  };
  if (doc && isTerminal(doc.status)) return doc;
  const lease = raiseFence(task.lease, event);
  if (lease) task.lease = lease;
  // Out-of-order history events (dispatched after started) never move a task backwards.
  if (event.type === "task.dispatched") {
    task.parent_exec_id ||= (m.parentTask as pb.TaskInfo | undefined)?.execId || null;
    return task;
  }
  // Nor does an event older than the last one applied: a redelivered `waiting_started` (or `started`) comes
  // back after the events that followed it, and must not make the task wait (or run) again.
  if (task.seq !== undefined && event.seq <= task.seq) return task;
  task.seq = event.seq;
  task.status = status;
  if (event.type === "task.started") {
    task.attempts = Math.max(task.attempts, Number(m.attempt) || 1);
    task.started_at ??= time;
    if (m.inputJson?.length) task.input = parseJsonBytes(m.inputJson);
  }
  if (event.type === "task.waiting_started") {
    // A wait's next attempt (its `retry` after a time-out) waits afresh: the time-out it retries is no failure.
    task.error = null;
    task.waiting_for = String(m.signalId || "") || null;
    task.started_at ??= time;
  }
  if (event.type === "task.waiting_ended" || event.type === "task.waiting_timed_out") task.waiting_for = null;
  if (event.type === "task.success") {
    // A success carries no error (API.md), whatever an earlier attempt's time-out recorded.
    task.error = null;
    task.output = parseJsonBytes(m.outputJson);
    task.attempts = Math.max(task.attempts, Number(m.attempt) || 1);
    if (m.skipped) task.status = "SKIPPED";
    foldUsage(task, m.usage as pb.TokenUsage | undefined);
  }
  if (event.type === "task.failed") {
    task.error = toExecutionError(m.error);
    foldUsage(task, m.usage as pb.TokenUsage | undefined);
    task.attempts = Math.max(task.attempts, Number(m.attempt) || 1);
  }
  if (event.type === "task.waiting_timed_out") {
    task.error = { message: "wait timed out", code: "wait_timeout" };
  }
  if (isTerminal(task.status)) {
    task.ended_at = time;
    task.started_at ??= time;
  }
  return task;
}

/** An agent task's token usage (and cost, when its model has a price), as its success or failure reports it. */
function foldUsage(task: TaskExecutionState, usage: pb.TokenUsage | undefined): void {
  if (!usage) return;
  task.usage = {
    input_tokens: Number(usage.inputTokens),
    output_tokens: Number(usage.outputTokens),
    total_tokens: Number(usage.totalTokens),
    ...(usage.cost === undefined ? {} : { cost: usage.cost }),
  };
}
