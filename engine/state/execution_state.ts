/**
 * The execution state as queries see it: the JSON shape of API.md, folded from the EVENTS stream into
 * JetStream KV by the state manager.
 */
import type { LeaseFence } from "../history/lease_fence.ts";

export const WORKFLOW_STATUSES = [
  "PENDING",
  "RUNNING",
  "WAITING",
  "PAUSED",
  "SUCCESS",
  "FAILED",
  "TIMED_OUT",
  "CANCELED",
] as const;
export type WorkflowStatusName = typeof WORKFLOW_STATUSES[number];

export const TASK_STATUSES = [...WORKFLOW_STATUSES, "SCHEDULED", "RETRY_SCHEDULED", "SKIPPED"] as const;
export type TaskStatusName = typeof TASK_STATUSES[number];

/** Statuses no event can move an execution out of. */
export const TERMINAL_STATUSES: ReadonlySet<string> = new Set([
  "SUCCESS",
  "FAILED",
  "TIMED_OUT",
  "CANCELED",
  "SKIPPED",
]);

export function isTerminal(status: string): boolean {
  return TERMINAL_STATUSES.has(status);
}

export interface ExecutionError {
  message: string;
  code: string;
  details?: unknown;
}

export interface TokenUsageState {
  input_tokens: number;
  output_tokens: number;
  total_tokens: number;
  /** From the model's `price`; absent when no model used had one. */
  cost?: number;
}

export interface TaskExecutionState {
  task_id: string;
  exec_id: string;
  status: TaskStatusName;
  output: unknown;
  error: ExecutionError | null;
  attempts: number;
  started_at: string | null;
  ended_at: string | null;
  /** The parallel, collection or composite task this one runs under, if any. */
  parent_exec_id?: string | null;
  usage?: TokenUsageState;
  /** The signal a waiting task waits for. */
  waiting_for?: string | null;
  /** What a tool, agent or sub-workflow task ran with: its `with`, rendered (from its latest attempt). */
  input?: unknown;
}

/**
 * What the `compozy_task_executions` bucket stores per task execution: its state plus the stream sequence
 * of the last event applied (see foldTaskDocument).
 */
export interface TaskDocument extends TaskExecutionState {
  seq?: number;
  /** The highest lease revision among the events applied, and where: its later zombie writes are ignored. */
  lease?: LeaseFence;
}

export interface ExecutionState {
  exec_id: string;
  workflow_id: string;
  status: WorkflowStatusName;
  input: unknown;
  output: unknown;
  error: ExecutionError | null;
  started_at: string | null;
  ended_at: string | null;
  tasks: TaskExecutionState[];
  /** The root execution's id (its own for a top-level run). */
  correlation_id: string;
  parent?: { exec_id: string; task_exec_id: string } | null;
  /** The execution this one re-runs (`POST /api/executions/{id}/rerun`), if any. */
  rerun_of?: string | null;
  /** The sum of its tasks' usage (see {@link executionUsage}); absent when no task reports any. */
  usage?: TokenUsageState;
}

/**
 * The usage of an execution: its tasks' usage summed; `cost` sums the tasks that have one (a model without a
 * price adds tokens, not cost). Undefined when no task reports usage.
 *
 * @example
 * ```ts
 * import { executionUsage } from "./execution_state.ts";
 * executionUsage([]); // undefined
 * ```
 */
export function executionUsage(tasks: Pick<TaskExecutionState, "usage">[]): TokenUsageState | undefined {
  let sum: TokenUsageState | undefined;
  for (const { usage } of tasks) {
    if (!usage) continue;
    sum ??= { input_tokens: 0, output_tokens: 0, total_tokens: 0 };
    sum.input_tokens += usage.input_tokens;
    sum.output_tokens += usage.output_tokens;
    sum.total_tokens += usage.total_tokens;
    if (usage.cost !== undefined) sum.cost = Math.round(((sum.cost ?? 0) + usage.cost) * 1e9) / 1e9;
  }
  return sum;
}

/**
 * What the `compozy_workflow_executions` bucket stores per execution: the state without its tasks (each
 * task execution is a document of its own in `compozy_task_executions`, so a collection of 10,000 items
 * never makes one huge value), plus the signals its tasks wait for.
 */
export interface WorkflowDocument extends Omit<ExecutionState, "tasks"> {
  /** Waiting task execution id → the signal it waits for ("" for a sleep). */
  waiting: Record<string, string>;
  /** Task execution id → stream sequence of its last wait event applied (see foldWait). */
  wait_seq?: Record<string, number>;
  /**
   * Its task execution ids, so that a read gets each task document by its key. Absent past
   * MAX_LISTED_TASKS tasks (the document stays small) and in documents written before the list existed: a
   * read then lists the task bucket's keys, which costs nats-server 2.9 a walk over every stored task.
   */
  task_ids?: string[];
  /** Stream sequence of the execution's entry in the index by status (see StateStore.indexStatus). */
  index_seq?: number;
  /**
   * The highest lease revision among the events applied (a take-over's, or a holder's), and where: a later
   * event with a lower revision is a paused engine's late write, ignored (lease_fence.ts).
   */
  lease?: LeaseFence;
}

/** The most task ids an execution's document lists (about 5 KiB). */
export const MAX_LISTED_TASKS = 128;

/** One entry of an execution's history, as `GET /api/executions/{id}/events` returns it. */
export interface EventRecord {
  seq: number;
  subject: string;
  /** `<component>.<type>`, e.g. `task.success`. */
  type: string;
  time: string;
  /** The Protobuf message in its canonical JSON form. */
  data: unknown;
}
