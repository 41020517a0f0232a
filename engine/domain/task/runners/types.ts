/**
 * The one interface every task type implements (`TaskRunner`), and what a runner may ask of the driver that
 * runs it (`DriverPort`). The driver keeps replay, retries, time-outs, waits, cancel and parking; a runner
 * says what one attempt of its type does.
 */
import type { TemplateContext } from "../../../../pkg/tplengine/mod.ts";
import type { TaskFailure } from "../../../failure.ts";
import type { RecordedTask } from "../../../history/replay_state.ts";
import type { Project, Workflow } from "../../project/mod.ts";
import type { TaskConfig } from "../schema.ts";
import type { ResultScope, ScopeValues } from "../template_scope.ts";
import type { DriverServices } from "../../workflow/driver_services.ts";
import type { TaskLedger } from "../../workflow/task_ledger.ts";
import type { ExecutionUsage } from "../workflow_budget.ts";

/** A task's outcome as the flow sees it. */
export type Outcome =
  | {
    ok: true;
    output: unknown;
    route?: string | TaskConfig;
    /** A router's route as recorded with its success (TaskExecutionSuccess.route). */
    routeName?: string;
    skipped?: boolean;
    usage?: unknown;
  }
  | { ok: false; failure: TaskFailure; next?: string };

/** Thrown into abandoned branches once the execution has ended (canceled, timed out, failed elsewhere). */
export class ExecutionEnded extends Error {
  override name = "ExecutionEnded";
}

/**
 * The reason a branch is given up while its execution goes on: a race was won or a fail_fast failed
 * elsewhere. The branch records nothing more; its running tasks are recorded canceled.
 */
export class BranchCanceled extends Error {
  override name = "BranchCanceled";
}

export interface Scope extends ScopeValues {
  /** Exec id of the parallel, collection or composite task this one runs under. */
  parentExecId?: string;
  /** The task results this task's templates see as `.tasks`. */
  results: ResultScope;
  /** Aborted when the branch this task runs in is given up (BranchCanceled) or its parent timed out. */
  abort?: AbortSignal;
  /**
   * Told when work under this scope goes past what the history recorded (a task or an attempt starts, a wait
   * is registered): the time-outs of the attempts around it may apply from then on (AttemptTimeouts.live).
   */
  live?: () => void;
}

export interface Waiter {
  /** `backoff`: a retry's back-off (woken by its `retry` timer only). */
  kind: "signal" | "timer" | "child" | "pause" | "backoff";
  signalId?: string;
  taskId: string;
  condition?: string;
  /** The attempt that waits: a wake-up meant for an earlier attempt (its timer, its child) is stale. */
  attempt: number;
  /** A `signal` wait with a time-out: its timer is removed once a signal ends it. */
  timed?: boolean;
  /** The sub-workflow a `child` wait waits for. */
  childExecId?: string;
  /** Where the condition is rendered (`.tasks`, `.item`, `.index` of the waiting task). */
  scope?: Scope;
  /** The waiting task's `.env` (its own `env` over the workflow's), which its condition reads. */
  env?: Record<string, string>;
  resolve(value: { reason: string; payload: unknown }): void;
}

/** What a runner may ask of the driver running it. */
export interface DriverPort {
  readonly project: Project;
  readonly workflow: Workflow;
  readonly execId: string;
  readonly correlationId: string;
  readonly services: DriverServices;
  /** Its task executions, which its end lists (see TaskLedger). */
  readonly tasks: TaskLedger;
  /** What the execution's agent tasks spent, for the workflow's `config.budget`. */
  readonly usage: ExecutionUsage;
  /** The execution ended, or this driver gave it up (see isAbandoned): nothing more may run from memory. */
  readonly isEnded: boolean;
  /** Given up without ending (its lease lost, its history unwritable): another activation replays it. */
  readonly isAbandoned: boolean;
  /**
   * Aborted when the execution ends (canceled, timed out, failed) or the driver is given up: its calls are
   * not sent again after it.
   */
  readonly endSignal: AbortSignal;
  /** Runs a child task (replayed when its outcome is recorded). */
  runTask(task: TaskConfig, key: string, scope: Scope): Promise<Outcome>;
  /**
   * The recorded terminal outcome of the task at `key`, with the stream position it was recorded at and the
   * attempt it ended in.
   */
  recordedAt(task: TaskConfig, key: string): { outcome: Outcome; seq: number; attempt: number } | undefined;
  /** What the replayed history holds of the task at `key` (absent: never dispatched before this activation). */
  recordOf(key: string): RecordedTask | undefined;
  context(scope?: Partial<Scope>): TemplateContext;
  /** The env of the task at `key` (its tool's `own` env over it); a template error fails that task. */
  env(
    task: TaskConfig | undefined,
    own: Record<string, string> | undefined,
    base: TemplateContext | undefined,
    key?: string,
  ): Record<string, string>;
  /** Counts I/O in flight (the driver parks only when nothing runs); `abort` stops waiting for it. */
  track<T>(promise: Promise<T>, abort?: AbortSignal): Promise<T>;
  /** Awaits a durable record; one that cannot be written gives the execution up. */
  recorded(write: Promise<void>): Promise<void>;
  /** Records a signal wait's start (`write`): a signal that comes meanwhile waits for the wait to register. */
  startSignalWait(taskExecId: string, signalId: string, write: Promise<void>): Promise<void>;
  /** Whether a wait of this execution for `signalId` has started (registered, being recorded, or replayed). */
  waitsForSignal(signalId: string): boolean;
  /** Registers a wait; resolves when its wake-up is recorded. */
  waitFor(taskExecId: string, waiter: Omit<Waiter, "resolve">): Promise<{ reason: string; payload: unknown }>;
  /** A sub-workflow runs for this execution (a cancel reaches it) / no longer does. */
  childStarted(childExecId: string): void;
  childEnded(childExecId: string): void;
  cancelChildren(childExecIds: string[], reason: string): Promise<void>;
}

/** One attempt of one task, as its runner sees it. */
export interface RunContext<T extends TaskConfig> {
  driver: DriverPort;
  task: T;
  key: string;
  execId: string;
  attempt: number;
  scope: Scope;
  /** The task's template context (rendered once per task). */
  context: TemplateContext;
  /** The replayed record of this attempt, when it was under way before. */
  record: RecordedTask | undefined;
  /** The runner's rendered input (a basic task's `with`, a collection's items), recorded with the attempt's start. */
  input?: unknown;
}

/** A task whose success a replay found recorded, as its runner sees it. */
export interface ReplayContext<T extends TaskConfig> {
  driver: DriverPort;
  task: T;
  key: string;
  scope: Scope;
}

/** What one attempt of a task of one type does. */
export interface TaskRunner<T extends TaskConfig> {
  run(run: RunContext<T>): Promise<Outcome>;
  /** The attempt's input, rendered once per attempt and recorded with its start. Absent: none. */
  input?(task: T, context: TemplateContext, key: string): unknown;
  /**
   * Whether a replay of a started attempt takes the input recorded with its start instead of rendering it
   * again (a collection's items and kept indexes: `now()` or a definition changed since would keep other
   * items; outside review E2). A start recorded without an input renders it again. Absent: rendered again.
   */
  replaysInput?: boolean;
  /**
   * Whether the attempt's start (with its input) is stored, awaited, before the attempt runs: a collection's
   * items run as steps of their own, whose outcomes a crash may leave stored without a start sent
   * fire-and-forget; the replay then rendered items and filter again. One write per attempt, not per item.
   * Absent: sent without waiting (a call's resend stores it first, see startedBeforeResend).
   */
  durableStart?: boolean;
  /**
   * Whether the runner stores its attempt's start itself (awaited, with what the attempt decided: a signal
   * task's targets), so the driver sends none: a second start of the same attempt is the same message (its
   * id) and the stream drops it within its duplicate window. Absent: the driver sends it.
   */
  recordsStart?: boolean;
  /**
   * Whether the attempt is a call in the runtime (a tool or an agent): a call that was running when its
   * engine died runs again, and that is its next attempt. Absent: not a call.
   */
  isCall?(driver: DriverPort, task: T): boolean;
  /**
   * Whether the task's `timeout` is the runner's own to apply (a call carries it to the runtime; a wait's
   * is how long it waits). Absent: the driver bounds each attempt with a durable timer.
   */
  ownsTimeout?(driver: DriverPort, task: T): boolean;
  /** The runner renders the task's `outputs` into its output itself (the driver must not render them again). */
  readonly rendersOutputs?: boolean;
  /**
   * What a replay needs beyond the recorded success, which it returns: e.g. a container's children put back
   * where later tasks read them, a router's route. Absent: the recorded success as it is.
   */
  replayed?(replay: ReplayContext<T>, recorded: Extract<Outcome, { ok: true }>): Outcome;
}

/**
 * A task given up while it ran (a decided race's or fail_fast's other branches, what a timed-out container
 * ran) as templates read it in `.tasks`: it did not fail, it has no output.
 */
export function canceledView() {
  return { output: null, status: "CANCELED" };
}

/** A failed task as templates read it in `.tasks`. */
export function failedView(failure: TaskFailure) {
  return { output: null, status: "FAILED", error: { message: failure.message, code: failure.code } };
}

/** The task config of one `type`. */
export type TaskOf<K extends TaskConfig["type"]> = Extract<TaskConfig, { type: K }>;

/**
 * The key prefix of a container's children in one attempt: `box` on the first, `box#2` on the second, so a
 * retried composite runs its children again instead of replaying the failed ones.
 */
export function childKeyOf(key: string, attempt: number): string {
  return attempt > 1 ? `${key}#${attempt}` : key;
}
