/** What a driver needs from the outside world; the workflow executor wires the real implementations. */
import type { TaskFailure } from "../../failure.ts";
import type { AgentDefinition, Workflow } from "../project/mod.ts";
import type { AgentRequest, LeafExecutor } from "../task/leaf_executor.ts";
import type { TaskConfig } from "../task/schema.ts";
import type { TemplateContext } from "../../../pkg/tplengine/mod.ts";
import type { ExecutionDriver } from "./execution_driver.ts";

/**
 * The state events a driver records. Methods returning a Promise are awaited JetStream writes (the
 * durability points); the others are published without waiting (history only, never replayed from).
 */
export interface DriverEvents {
  taskDispatched(
    d: ExecutionDriver,
    task: TaskConfig,
    key: string,
    execId: string,
    parentExecId?: string,
  ): void;
  taskStarted(d: ExecutionDriver, key: string, execId: string, attempt: number): void;
  /** A task given up while it ran (its branch lost a race, its parent timed out, the execution ended). */
  taskCanceled(d: ExecutionDriver, key: string, execId: string): void;
  taskSucceeded(
    d: ExecutionDriver,
    key: string,
    execId: string,
    output: unknown,
    attempt: number,
    skipped: boolean,
    usage?: unknown,
  ): Promise<void>;
  taskFailed(
    d: ExecutionDriver,
    key: string,
    execId: string,
    failure: TaskFailure,
    attempt: number,
  ): Promise<void>;
  retryScheduled(
    d: ExecutionDriver,
    key: string,
    execId: string,
    nextAttempt: number,
    delayMs: number,
    failure: TaskFailure,
  ): Promise<void>;
  waitingStarted(
    d: ExecutionDriver,
    key: string,
    execId: string,
    attempt: number,
    signalId: string,
    deadlineMs: number,
  ): Promise<void>;
  waitingEnded(
    d: ExecutionDriver,
    key: string,
    execId: string,
    attempt: number,
    payload: unknown,
  ): Promise<void>;
  waitingTimedOut(d: ExecutionDriver, key: string, execId: string, attempt: number): Promise<void>;
  workflowSucceeded(d: ExecutionDriver, output: unknown): Promise<void>;
  workflowFailed(d: ExecutionDriver, failure: TaskFailure): Promise<void>;
  workflowCanceled(d: ExecutionDriver, reason: string): Promise<void>;
  workflowTimedOut(d: ExecutionDriver): Promise<void>;
  workflowPaused(d: ExecutionDriver): Promise<void>;
  workflowResumed(d: ExecutionDriver): Promise<void>;
}

export interface DriverServices {
  events: DriverEvents;
  leaf: LeafExecutor;
  timers: {
    /** Stores a durable timer (a TaskResume held until `dueMs`) for one attempt of a task. */
    schedule(
      d: ExecutionDriver,
      key: string,
      execId: string,
      reason: string,
      dueMs: number,
      attempt: number,
    ): Promise<void>;
    /** Removes the execution's own time-out timer (it ended). */
    clearWorkflowTimeout(d: ExecutionDriver): Promise<void>;
  };
  children: {
    /**
     * Starts a sub-workflow (idempotently per attempt of the task), returns its exec id; its end wakes the
     * task.
     */
    start(
      d: ExecutionDriver,
      child: Workflow,
      key: string,
      execId: string,
      attempt: number,
      input: unknown,
    ): Promise<string>;
    /** Cancels the running sub-workflows of `d`: those given, and any other the state shows. */
    cancelAll(d: ExecutionDriver, known: string[], reason: string): Promise<void>;
  };
  signals: {
    /** Sends a signal to one execution, or to every execution waiting for it; returns how many got it. */
    send(d: ExecutionDriver, signalId: string, payload: unknown, target?: string): Promise<number>;
  };
  agents: {
    /** Resolves the agent's model, renders its action prompt and builds the runtime request. */
    prepare(
      d: ExecutionDriver,
      agent: AgentDefinition,
      actionId: string | undefined,
      input: unknown,
      context: TemplateContext,
      key: string,
    ): AgentRequest;
  };
  processEnv: Record<string, string>;
}
