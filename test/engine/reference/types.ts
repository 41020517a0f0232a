/** What the reference interpreter is given (a scripted world) and what it answers. */

/** How one tool call ends, as the scripted world decides from the tool, its input and the attempt. */
export type ToolBehaviour =
  | { ok: true; output: unknown; ms: number }
  | { ok: false; code: string; retryable: boolean; ms: number };

/** Scripted tools: called once per attempt that starts. */
export type ToolModel = (toolId: string, input: unknown, attempt: number) => ToolBehaviour;

/** Something the outside world does to an execution: a signal (to it, or broadcast), pause, resume, cancel. */
export type Action =
  | {
    kind: "signal";
    signal: string;
    payload: unknown;
    broadcast: boolean;
    /** Its message id (a delivery id): the first send of an id and its copies are one message. */
    id?: string;
    /** A copy of the message `id` sent earlier, stored again (past the command stream's duplicate window). */
    copy?: boolean;
  }
  | { kind: "pause" }
  | { kind: "resume" }
  | { kind: "cancel"; reason: string };

/**
 * A point where the world acts: once every wait named in `waiting` (task keys of the root execution) is
 * waiting, the actions are taken in order. The interpreter lists them as it reaches them.
 */
export interface Checkpoint {
  waiting: string[];
  actions: Action[];
  /**
   * For each action, whether it is a broadcast that must reach the root execution: when it was sent, a wait of
   * the root listened for its signal, and that wait did not end by its time-out (which in real time may fire
   * before the harness, acting after it sees the wait, sends it). A broadcast after an earlier one of the same
   * checkpoint ended every wait for its signal reaches no execution, on the engine as here: each item of a
   * collection gets its wait's actions, and the first of those signals ends every item's wait (seed 1034169).
   */
  reaches: boolean[];
}

/** One recorded task execution, by key (`id`, `parent/child`, `collection[index]`). */
export interface TaskOutcome {
  status: "SUCCESS" | "FAILED" | "SKIPPED";
  output: unknown;
  code?: string;
}

export interface ToolCallRecord {
  tool: string;
  input: unknown;
  attempt: number;
  /**
   * The task key of a call of the root execution whose task never ended (it was canceled: the execution's
   * end, a decided race, a container's time-out), so the engine may not have started it yet.
   */
  canceled?: string;
}

export interface ReferenceResult {
  status: "SUCCESS" | "FAILED" | "TIMED_OUT" | "CANCELED" | "STUCK";
  output: unknown;
  error: { code: string } | null;
  /** Tasks of the root execution that ended SUCCESS, FAILED or SKIPPED. */
  tasks: Record<string, TaskOutcome>;
  /** Every tool call started, sub-workflows included. */
  calls: ToolCallRecord[];
  checkpoints: Checkpoint[];
  /** Virtual time at which each wait of the root execution first started waiting. */
  waitStarts: Record<string, number>;
  /** Every attempt bounded by a task `timeout` that is not a tool call's or a wait's. */
  bounds: BoundedAttempt[];
  /** Every `race` or `fail_fast` parallel that one branch decided, with how many branches it stopped. */
  decisions: Decision[];
  /** Every failed parallel whose error is its first branch's failure, with the other branches' failures. */
  parallelFailures: ParallelFailures[];
  /** Every sub-workflow execution started, with the task that started it and how it ended. */
  children: ChildRecord[];
  /** Virtual time at the end, in ms. */
  elapsedMs: number;
}

/**
 * A sub-workflow started by a task of the root execution (`key`, one per attempt). docs/engine.md: a child
 * whose task was given up (its time-out, a decided race or fail_fast, a retry's clean-up), or whose parent
 * ended other than SUCCESS while it ran, ends CANCELED.
 */
export interface ChildRecord {
  key: string;
  workflow: string;
  status: "SUCCESS" | "FAILED" | "TIMED_OUT" | "CANCELED" | "RUNNING";
}

/** Actions the world takes when a wait (by task id, for each of its executions) starts waiting. */
export type WaitPlan = Record<string, Action[]>;

/** An attempt of a task with a `timeout` (a container, a sleep, a sub-workflow): how long it took. */
export interface BoundedAttempt {
  key: string;
  limitMs: number;
  tookMs: number;
  timedOut: boolean;
}

/**
 * A `race` won, or a `fail_fast` failed, by `branch` at `atMs`, while `stopped` other branches of `key` were
 * running or not yet started (the reference stops them there).
 */
/**
 * A parallel that failed with its first branch's failure (`wait_all`, or a `race` no branch won), and the
 * failures of its other branches, in virtual time. Which failure is first on a real clock depends on how
 * long the engine's calls take when two come close.
 */
export interface ParallelFailures {
  key: string;
  failures: Array<{ branch: string; code: string; atMs: number }>;
}

export interface Decision {
  key: string;
  branch: string;
  atMs: number;
  stopped: number;
}
