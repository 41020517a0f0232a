/** What a driver needs from the outside world; the workflow executor wires the real implementations. */
import type { TaskFailure } from "../../failure.ts";
import type { AgentDefinition, Workflow } from "../project/mod.ts";
import type { AgentRequest, LeafExecutor } from "../task/leaf_executor.ts";
import type { TaskConfig } from "../task/schema.ts";
import type { TemplateContext } from "../../../pkg/tplengine/mod.ts";
import type { TaskLedger } from "./task_ledger.ts";
import type { DroppedSignalLog } from "../../dropped_signals.ts";

/** Which execution a service acts for: all a service needs of its driver. */
export interface DriverRef {
  readonly workflow: Workflow;
  readonly execId: string;
  readonly correlationId: string;
  /** Its task executions: the recorder keeps it current, and the end carries it (see TaskLedger). */
  readonly tasks: TaskLedger;
  /**
   * The lease holding it was activated under (Leases.holdingOf): its events are refused once that holding
   * ended. A driver given up while a write of it was under way went on when the write came back; once its
   * engine held the execution again, its next events carried the new holding's revision, which no fence
   * leaves out (outside report R-E1, test/engine/given_up_late_write_test.ts). Undefined: no lease (tests).
   */
  readonly holding?: number;
  /**
   * Aborted when the driver is given up: its writes still being tried (through an outage) stop at once rather
   * than at the lease's writable end, since the command comes back and a replay decides.
   */
  readonly givenUp?: AbortSignal;
}

/**
 * The state events a driver records. Methods returning a Promise are awaited JetStream writes (the
 * durability points); the others are published without waiting (history only, never replayed from).
 */
export interface DriverEvents {
  taskDispatched(
    d: DriverRef,
    task: TaskConfig,
    key: string,
    execId: string,
    parentExecId?: string,
  ): void;
  /** `input`: what a tool, agent or sub-workflow call runs with (its rendered `with`). */
  taskStarted(d: DriverRef, key: string, execId: string, attempt: number, input?: unknown): void;
  /** The same, stored (awaited); an input too large for one bus message is left out of it. */
  taskStartedStored(
    d: DriverRef,
    key: string,
    execId: string,
    attempt: number,
    input?: unknown,
  ): Promise<void>;
  /** Before a call is sent again: the lease must be writable and the attempt's task.started stored. */
  startedBeforeResend(
    d: DriverRef,
    key: string,
    execId: string,
    attempt: number,
    input?: unknown,
  ): Promise<void>;
  /** A task given up while it ran (its branch lost a race, its parent timed out). */
  taskCanceled(d: DriverRef, key: string, execId: string): void;
  /**
   * A task still open when its execution ends (canceled, timed out, failed): recorded canceled before the
   * end, so it has an end of its own and nothing is recorded after the execution's. The runtime stops a tool
   * or agent call on it.
   */
  taskEndedWithExecution(d: DriverRef, key: string, execId: string): Promise<void>;
  taskSucceeded(
    d: DriverRef,
    key: string,
    execId: string,
    output: unknown,
    attempt: number,
    skipped: boolean,
    usage?: unknown,
    /** A router's route, which its replay takes again. */
    route?: string,
  ): Promise<void>;
  taskFailed(
    d: DriverRef,
    key: string,
    execId: string,
    failure: TaskFailure,
    attempt: number,
  ): Promise<void>;
  retryScheduled(
    d: DriverRef,
    key: string,
    execId: string,
    nextAttempt: number,
    delayMs: number,
    failure: TaskFailure,
  ): Promise<void>;
  waitingStarted(
    d: DriverRef,
    key: string,
    execId: string,
    attempt: number,
    signalId: string,
    deadlineMs: number,
  ): Promise<void>;
  /** `signalMessageId`: the message id of the signal that ended the wait (none for another wake-up). */
  waitingEnded(
    d: DriverRef,
    key: string,
    execId: string,
    attempt: number,
    payload: unknown,
    signalMessageId?: string,
  ): Promise<void>;
  waitingTimedOut(d: DriverRef, key: string, execId: string, attempt: number): Promise<void>;
  workflowSucceeded(d: DriverRef, output: unknown): Promise<void>;
  workflowFailed(d: DriverRef, failure: TaskFailure): Promise<void>;
  workflowCanceled(d: DriverRef, reason: string): Promise<void>;
  workflowTimedOut(d: DriverRef): Promise<void>;
  workflowPaused(d: DriverRef): Promise<void>;
  workflowResumed(d: DriverRef): Promise<void>;
}

/** An execution a signal task sends to, as recorded with the task's start (a sub-workflow's subjects carry its root's correlation id). */
export interface SignalRecipient {
  exec_id: string;
  workflow_id: string;
  correlation_id: string;
}

export interface DriverServices {
  events: DriverEvents;
  leaf: LeafExecutor;
  timers: {
    /** Stores a durable timer (a TaskResume held until `dueMs`) for one attempt of a task. */
    schedule(
      d: DriverRef,
      key: string,
      execId: string,
      reason: string,
      dueMs: number,
      attempt: number,
    ): Promise<void>;
    /** Removes the execution's own time-out timer (it ended). */
    clearWorkflowTimeout(d: DriverRef): Promise<void>;
    /** Removes the last timer stored for a task execution (a wait's time-out, once its signal ended it). */
    clearTaskTimer(d: DriverRef, execId: string): Promise<void>;
  };
  children: {
    /**
     * Starts a sub-workflow (idempotently per attempt of the task), returns its exec id; its end wakes the
     * task.
     */
    start(
      d: DriverRef,
      child: Workflow,
      key: string,
      execId: string,
      attempt: number,
      input: unknown,
    ): Promise<string>;
    /** Cancels the sub-workflows given, and only those (a given-up task's own child). */
    cancel(d: DriverRef, childExecIds: string[], reason: string): Promise<void>;
    /** Cancels every running sub-workflow of `d` (it is ending): those given, and any other the state shows. */
    cancelAll(d: DriverRef, known: string[], reason: string): Promise<void>;
    /** Cancels the running sub-workflows the state shows for `d`'s task run `taskExecId` (its start's answer lost). */
    cancelOfTask(d: DriverRef, taskExecId: string, reason: string): Promise<void>;
  };
  signals: {
    /**
     * The executions a signal goes to: one execution (`target`) if it has not ended, or every execution
     * waiting for it when `target` is undefined (an ended one takes no signal: the API answers 409 for one).
     */
    targets(d: DriverRef, signalId: string, target: string | undefined): Promise<SignalRecipient[]>;
    /**
     * Sends a signal to each of `targets`. `sender` (the signal task's exec id) makes the message id of each
     * target's copy, so a send repeated by a replay of the same task is stored once (within the stream's
     * duplicate window), and dropped by its target after that.
     */
    send(
      d: DriverRef,
      signalId: string,
      payload: unknown,
      targets: SignalRecipient[],
      sender: string,
    ): Promise<void>;
  };
  /** The signal messages an execution dropped at their first arrival: a later copy is dropped too. */
  droppedSignals: DroppedSignalLog;
  agents: {
    /** Resolves the agent's model, renders its action prompt and builds the runtime request. */
    prepare(
      d: DriverRef,
      agent: AgentDefinition,
      actionId: string | undefined,
      input: unknown,
      context: TemplateContext,
      key: string,
    ): AgentRequest;
  };
  processEnv: Record<string, string>;
}
