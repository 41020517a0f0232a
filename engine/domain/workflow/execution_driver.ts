/**
 * Drives one workflow execution in memory by replaying its history: a task whose outcome is recorded
 * returns that outcome without running again; the first task without one runs. The driver parks (and is
 * dropped from memory) when every branch waits for something outside it (a signal, a timer, a child
 * workflow); the wake-up replays the history again and delivers what it waited for.
 *
 * Failure semantics: a task's result is recorded (one awaited JetStream write) before the next task is
 * dispatched, so a crash re-runs at most the unrecorded attempt of each running branch.
 */
import { MessageTooLargeError, PublishError, ReadUnansweredError } from "../../../pkg/nats/mod.ts";
import type { TemplateContext } from "../../../pkg/tplengine/mod.ts";
import { TaskFailure, toTaskFailure } from "../../failure.ts";
import { uuidv7 } from "../../ids.ts";
import { parseJsonBytes } from "../../json_bytes.ts";
import { copyMayEnd, type RecordedTask, type ReplayState } from "../../history/replay_state.ts";
import { getLogger } from "../../../pkg/logger/mod.ts";
import type { Project, Workflow } from "../project/mod.ts";
import type { TaskConfig } from "../task/schema.ts";
import { ExecutionUsage } from "../task/workflow_budget.ts";
import { backoffDelay } from "../task/backoff.ts";
import {
  renderCondition,
  renderField,
  renderWorkflowOutputs,
  ResultScope,
  type ScopeValues,
} from "../task/template_scope.ts";
import { AttemptTimeouts } from "./attempt_timeouts.ts";
import type { DriverServices } from "./driver_services.ts";
import { WorkflowDeadline } from "./workflow_deadline.ts";
import { ExecutionTemplates } from "./execution_templates.ts";
import { TaskLedger } from "./task_ledger.ts";
import { giveUpReplayed } from "./replayed_give_up.ts";
import { droppedBefore, logDroppedSignal } from "./dropped_signal_log.ts";
import { abortable, anySignal, isWaiting, recordedOutcome, stale } from "./driver_support.ts";
import {
  BranchCanceled,
  canceledView,
  type DriverPort,
  ExecutionEnded,
  failedView,
  type Outcome,
  replayedSuccess,
  restoreChildResults,
  runAttempt,
  runnerOf,
  type Scope,
  type Waiter,
} from "../task/runners/mod.ts";

export { BranchCanceled, ExecutionEnded, type Outcome, type Scope, type Waiter };

/**
 * How a run of the driver ends: the execution ended, it parked (only waits are left), or the driver gave
 * it up because its history could not be written (the command is redelivered and replayed later).
 */
export type DriverResult = "ended" | "parked" | "abandoned";

const log = getLogger(["engine", "driver"]);

/**
 * What stops the work an attempt left running once it ended. One instance: an `Error`, with its stack, built
 * per attempt was 0.9% of the engine's CPU under W1 (V8 profile, 2026-12-03); it is only compared by class.
 */
const ATTEMPT_ENDED = new BranchCanceled("the attempt ended");

export class ExecutionDriver implements DriverPort {
  readonly waiters = new Map<string, Waiter>();
  /** Signal waits whose start is being recorded, not registered yet (task exec id -> signal id). */
  private readonly startingWaits = new Map<string, string>();
  /** Attempts bounded by an engine-side time-out (see AttemptTimeouts). */
  private readonly timeouts = new AttemptTimeouts(this, () => this.abandon(), () => this.noticeReached());
  /** The results of the workflow's own steps (the outermost scope). */
  private readonly rootResults = new ResultScope();
  private busy = 0;
  /** Given up (see abandon): commands delivered to it must come back, not be acknowledged. */
  private abandoned = false;
  /** What made the driver give up, when known (see abandon). */
  private abandonCause: unknown;
  private deliveries = 0;
  private idleWaiters: Array<() => void> = [];
  /** Deliveries waiting for the replay to reach the task they are for (see whenReached). */
  private readonly reachWatchers = new Set<{ reached: () => boolean; resolve: () => void }>();
  private ended = false;
  /**
   * Aborted at the execution's end, or when the driver is given up (see endSignal): its tool and agent calls
   * stop waiting and are never sent again; after a give-up the command comes back and a replay (in this
   * engine too) runs the task's next attempt (outside review E3).
   */
  private readonly endController = new AbortController();
  /** Aborted when the driver is given up (not at the execution's end): see DriverRef.givenUp. */
  private readonly givenUpController = new AbortController();
  /** Parked (see finish): it takes no more deliveries (see isParked). */
  private parked = false;
  private paused: boolean;
  private pauseGate?: Promise<void>;
  private openGate?: () => void;
  private settle!: (result: DriverResult) => void;
  private readonly settled: Promise<DriverResult>;
  private parkTimer?: ReturnType<typeof setTimeout>;
  /** Sub-workflows running for this execution: a cancel reaches them too. */
  private readonly children = new Set<string>();
  /**
   * The signal messages a wait took, met by this driver (taken here, or a copy of one the replay shows taken),
   * each with the waits that may still take a copy of it (see deliverSignal).
   */
  private readonly takenSignals = new Map<string, Set<string>>();
  readonly usage: ExecutionUsage;
  private readonly templates: ExecutionTemplates;
  private readonly deadline: WorkflowDeadline;
  readonly tasks: TaskLedger;

  constructor(
    readonly services: DriverServices,
    readonly project: Project,
    readonly workflow: Workflow,
    readonly execId: string,
    readonly correlationId: string,
    readonly replay: ReplayState,
    /** The lease holding this driver writes under (see DriverRef.holding). */
    readonly holding?: number,
  ) {
    this.usage = ExecutionUsage.fromReplay(replay.tasks.values());
    this.templates = new ExecutionTemplates(
      project,
      workflow,
      execId,
      replay.input,
      services.processEnv,
      this.rootResults,
    );
    this.tasks = new TaskLedger(replay.tasks.entries());
    this.paused = replay.paused;
    this.deadline = new WorkflowDeadline(
      this,
      replay.startedAt,
      replay.tasks.size === 0,
      () => this.timeOutWorkflow(),
    );
    this.settled = new Promise((resolve) => this.settle = resolve);
  }

  /** How the execution ended, once it has: what a parent workflow is told. */
  result?: { status: string; output: unknown; error?: { message: string; code: string } };

  get isEnded(): boolean {
    return this.ended;
  }

  get isAbandoned(): boolean {
    return this.abandoned;
  }

  /** Why the driver was given up, for the line that fails the execution once its command stops coming back. */
  get abandonReason(): string | undefined {
    if (this.abandonCause === undefined) return undefined;
    return this.abandonCause instanceof Error ? this.abandonCause.message : String(this.abandonCause);
  }

  get endSignal(): AbortSignal {
    return this.endController.signal;
  }

  get givenUp(): AbortSignal {
    return this.givenUpController.signal;
  }

  /**
   * Whether it parked: its executor is letting it go (its lease is being released), so a command must not be
   * delivered to it but wait for the next activation (finding G9: a signal delivered to a parked driver
   * recorded its wait's end, and the flow then ran on in memory without the lease and stopped).
   */
  get isParked(): boolean {
    return this.parked;
  }

  /**
   * Runs until the execution ends, parks, or is abandoned. `cancel`: the reason of a cancel accepted before
   * the command that activated it (workflow_executor.ts, pending_controls.ts): the execution is canceled
   * before anything of it runs again.
   */
  run(cancel?: string): Promise<DriverResult> {
    if (cancel !== undefined) {
      return this.endBeforeRunning(`its cancel (${cancel})`, () => this.cancel(cancel));
    }
    // A deadline that passed while no engine ran the execution times it out before anything of it runs again:
    // the replay recorded a new attempt and sent its call first, and the timer fired only after (outside
    // review B5).
    if (this.deadline.overdue()) {
      return this.endBeforeRunning("its overdue time-out", () => this.timeOutWorkflow());
    }
    this.deadline.arm();
    if (this.paused) this.closeGate();
    this.program().catch((e) => {
      if (e instanceof ExecutionEnded) return;
      if (natsOutOfReach(e) || this.abandoned) {
        this.logGivenUp("a step's outcome could not be recorded", e);
        return this.abandon(e);
      }
      const failure = toTaskFailure(e);
      this.failWorkflow(failure).catch((recordError) => {
        this.logGivenUp(
          `its failure (${failure.code}: ${failure.message}) could not be recorded`,
          recordError,
        );
        this.abandon(recordError);
      });
    });
    return this.settled;
  }

  /** Ends the execution by `end` without running any of it; `what` names the end in a give-up's log line. */
  private endBeforeRunning(what: string, end: () => Promise<void>): Promise<DriverResult> {
    end().catch((e) => {
      if (e instanceof ExecutionEnded) return;
      this.logGivenUp(`${what} could not be recorded`, e);
      this.abandon(e);
    });
    return this.settled;
  }

  /**
   * Why the driver gives the execution up: NATS out of reach (natsOutOfReach) is the expected case, its
   * command comes back and the replay goes on (warning); anything else is a defect worth an error.
   */
  private logGivenUp(what: string, e: unknown): void {
    // `reason` for the line, `error` (with its cause chain) for the JSON record.
    const properties = { execId: this.execId, what, reason: String(e), error: e };
    if (natsOutOfReach(e)) {
      log.warn("execution {execId} given up: {what}: {reason}; its command comes back", properties);
    } else {
      log.error("execution {execId} given up: {what}: {reason}; its command comes back", properties);
    }
  }

  /**
   * Gives the execution up without ending it: its outcome could not be recorded, so nothing may go on from
   * memory. The activating command is redelivered and the execution replayed from what was recorded.
   */
  abandon(cause?: unknown): void {
    // The first cause is the one a give-up at the redelivery bound names (see WorkflowExecutor.bounded).
    if (!this.abandoned && cause !== undefined) this.abandonCause = cause;
    this.abandoned = true;
    this.ended = true;
    this.endController.abort(new ExecutionEnded("the execution was given up; its calls are not sent again"));
    this.givenUpController.abort(
      new ExecutionEnded("the execution was given up; its writes are not tried again"),
    );
    this.finish("abandoned");
  }

  // ---- deliveries from outside ----

  /**
   * A signal for this execution: it ends every wait for it whose condition accepts the payload. Only the waits
   * that had started when the signal came may take it: those waiting here, and those the history shows
   * waiting that a replay has not reached yet (tried again once the driver is idle). A wait that starts later,
   * after another signal moved the flow on, never takes an earlier signal. A signal no wait takes is dropped
   * (CONFIG.md: it leaves waits waiting), with an info line naming it and the execution.
   *
   * `messageId` is the signal message's id (every publisher gives one), recorded with each wait it ends. A message whose id a wait took
   * already is dropped: a signal task's replay sends its copy again under the same id, and past the command
   * stream's duplicate window (2 min by default) the server stores it; a second wait for the signal took it
   * as a second signal (eng42, `test/engine/signal_task_resent_test.ts`). Only the waits that were open when
   * it was first taken may still take it: the message is delivered again when the engine stopped between the
   * records of the waits it ends, and the waits not recorded yet took nothing (before, they waited for ever).
   * A message no wait took is recorded dropped (services.droppedSignals): its fate is fixed at its first
   * arrival, and a copy of it is dropped too, even by a wait that opened since (sig44).
   */
  deliverSignal(signalId: string, payload: unknown, messageId: string | undefined): Promise<boolean> {
    return this.delivery(async () => {
      const open = messageId === undefined ? undefined : this.mayTakeCopy(messageId);
      const eligible = new Set<string>();
      for (const [id, w] of this.waiters) {
        if (w.kind === "signal" && w.signalId === signalId) eligible.add(id);
      }
      for (const record of this.replay.tasks.values()) {
        if (record.status === "waiting" && record.waitingFor === signalId) eligible.add(record.execId);
      }
      for (const [id, waitingFor] of this.startingWaits) {
        if (waitingFor === signalId) eligible.add(id);
      }
      const where = { execId: this.execId, correlationId: this.correlationId, workflowId: this.workflow.id };
      if (open) {
        for (const id of eligible) if (!open.has(id)) eligible.delete(id);
        if (eligible.size === 0) {
          logDroppedSignal(
            "info",
            where,
            signalId,
            `a wait took this very message (${messageId}) already: it is a copy sent again`,
          );
          return false;
        }
      } else if (
        messageId !== undefined && eligible.size > 0 &&
        await this.track(this.services.droppedSignals.has(this.execId, messageId))
      ) {
        // Its first arrival found no wait to take it: a wait opened since must not take its copy either.
        logDroppedSignal("info", where, signalId, droppedBefore(messageId));
        return false;
      }
      const tried = new Set<string>();
      let taken = await this.matchSignal(signalId, payload, messageId, eligible, tried);
      if ([...eligible].some((id) => !tried.has(id))) {
        await this.whenReached(() => [...eligible].every((id) => tried.has(id) || this.waiters.has(id)));
        taken = await this.matchSignal(signalId, payload, messageId, eligible, tried) || taken;
      }
      // Said in the log, as for a parked execution (workflow_executor.ts): the API only counts the waits for
      // a signal, so a signal sent to a running execution that nothing takes left no trace at all.
      if (!taken) {
        logDroppedSignal(
          "info",
          where,
          signalId,
          eligible.size === 0
            ? "no wait of it listens for it"
            : "no wait for it took it (its condition refused it, or the wait ended first)",
        );
        // Recorded before the message is acknowledged: a copy of it (sent again, or this message delivered
        // again) finds its fate decided, wherever and whenever it arrives (within the record's TTL).
        if (messageId !== undefined) {
          await this.track(this.services.droppedSignals.record(this.execId, messageId));
        }
      }
      return taken;
    });
  }

  /**
   * The waits that may take a copy of a signal message a wait took already (none when none took it: undefined):
   * the replay's waits open before its first take and not ended since (copyMayEnd), less those taken here.
   */
  private mayTakeCopy(messageId: string): Set<string> | undefined {
    const known = this.takenSignals.get(messageId);
    if (known) return known;
    const taken = this.replay.takenSignals.get(messageId);
    if (!taken) return undefined;
    const open = new Set(
      [...this.replay.tasks.values()].filter((r) => copyMayEnd(taken, r)).map((r) => r.execId),
    );
    this.takenSignals.set(messageId, open);
    return open;
  }

  waitsForSignal(signalId: string): boolean {
    return [...this.waiters.values()].some((w) => w.kind === "signal" && w.signalId === signalId) ||
      [...this.startingWaits.values()].includes(signalId) ||
      [...this.replay.tasks.values()].some((r) => r.status === "waiting" && r.waitingFor === signalId);
  }

  /** Ends the eligible waits for `signalId` not tried yet that accept `payload`. */
  private async matchSignal(
    signalId: string,
    payload: unknown,
    messageId: string | undefined,
    eligible: Set<string>,
    tried: Set<string>,
  ): Promise<boolean> {
    let taken = false;
    for (const [taskExecId, waiter] of [...this.waiters]) {
      if (waiter.kind !== "signal" || waiter.signalId !== signalId || !eligible.has(taskExecId)) continue;
      if (tried.has(taskExecId)) continue;
      tried.add(taskExecId);
      if (waiter.condition !== undefined && !this.accepts(waiter, taskExecId, payload)) continue;
      // A time-out already due comes first (see deliverResume); it may have ended this wait.
      await this.timeouts.expireOverdue(Date.now());
      if (this.waiters.get(taskExecId) !== waiter || this.ended) continue;
      this.waiters.delete(taskExecId);
      try {
        await this.track(
          this.services.events.waitingEnded(
            this,
            waiter.taskId,
            taskExecId,
            waiter.attempt,
            payload,
            messageId,
          ),
        );
        // Taken here first, every wait open for it is tried in this delivery: a copy ends none.
        if (messageId !== undefined) {
          const open = this.takenSignals.get(messageId);
          if (open) open.delete(taskExecId);
          else this.takenSignals.set(messageId, new Set());
        }
      } catch (e) {
        if (!(e instanceof MessageTooLargeError)) {
          this.abandon(e);
          throw e;
        }
        // Nothing was stored and no replay could store it: the signal is refused, the wait goes on (a
        // given-up execution replayed it for ever: outside review F5's rest).
        this.waiters.set(taskExecId, waiter);
        log.error("signal {signal} to execution {execId} refused: {error}", {
          signal: signalId,
          execId: this.execId,
          error: e.message,
        });
        continue;
      }
      // Its time-out timer is moot now: removed rather than held in TASK_CMDS until the old deadline (outside
      // review F3's rest). Left there if the removal fails: its wake-up is then dropped as moot.
      if (waiter.timed) {
        this.services.timers.clearTaskTimer(this, taskExecId).catch((e) =>
          log.warn("time-out timer of wait {task} of {execId} not removed: {error}", {
            task: waiter.taskId,
            execId: this.execId,
            error: String(e),
          })
        );
      }
      waiter.resolve({ reason: "signal", payload });
      taken = true;
    }
    return taken;
  }

  /**
   * Whether a wait's condition accepts a signal's payload. A condition that renders false, or that cannot be
   * evaluated on this payload (a missing field, say), does not accept it: the wait goes on, and the log (the
   * dev log) says why the signal changed nothing, since the API's answer only counts the waits for it.
   */
  private accepts(waiter: Waiter, taskExecId: string, payload: unknown): boolean {
    let reason: string;
    try {
      const scope = waiter.scope ?? { results: this.rootResults };
      const accepted = renderField(
        waiter.condition,
        { ...this.context({ ...scope, signal: { payload } }), ...(waiter.env && { env: waiter.env }) },
        waiter.taskId,
        "condition",
      );
      if (accepted === true || accepted === "true") return true;
      reason = `its condition ${waiter.condition} is false`;
    } catch (e) {
      reason = `its condition could not be read: ${e instanceof Error ? e.message : String(e)}`;
    }
    log.info("signal {signal} to execution {execId} not taken by wait {task}: {reason}; it goes on waiting", {
      signal: waiter.signalId,
      execId: this.execId,
      task: waiter.taskId,
      task_exec_id: taskExecId,
      reason,
    });
    return false;
  }

  /**
   * A timer, a wait's time-out, a task's time-out or a child workflow's end, addressed to one task execution.
   * Resolves once the wake-up is recorded, so its command is acknowledged only then. A wake-up nothing
   * waits for once the driver is idle is moot (its task ended, or its branch was given up) and is dropped.
   * `atMs` is when the wake-up happened (a timer's due time): a task time-out due by then fires first.
   */
  deliverResume(taskExecId: string, reason: string, payload: unknown, atMs = Date.now()): Promise<void> {
    return this.delivery(async () => {
      if (reason === "workflow_timeout") return await this.timeOutWorkflow();
      if (reason === "task_timeout") return await this.expireAttempt(taskExecId, payload);
      await this.whenReached(() => this.waiters.has(taskExecId));
      let waiter = this.waiters.get(taskExecId);
      if (waiter && !stale(waiter, reason, payload)) {
        // A time-out due before this wake-up (a timer's due time, else now) comes first; it may have ended
        // this wait (its task, or a container of it).
        await this.timeouts.expireOverdue(atMs);
        if (this.waiters.get(taskExecId) !== waiter) waiter = undefined;
      }
      // Ended meanwhile (a cancel): nothing is written after the end.
      if (!waiter || stale(waiter, reason, payload) || this.ended) {
        log.debug("wake-up {reason} for {taskExecId} dropped: nothing waits for it", { reason, taskExecId });
        return;
      }
      this.waiters.delete(taskExecId);
      // Recorded before the wait resolves, and before the command that woke it is acknowledged: a replay
      // after a crash takes the recorded wake-up instead of waiting for a command that is gone. A back-off's
      // end needs no record: its recorded due time has passed (see backOff).
      if (reason !== "retry") {
        await this.recorded(
          reason === "timeout"
            ? this.services.events.waitingTimedOut(this, waiter.taskId, taskExecId, waiter.attempt)
            : this.services.events.waitingEnded(this, waiter.taskId, taskExecId, waiter.attempt, payload),
        );
      }
      waiter.resolve({ reason, payload });
    });
  }

  /**
   * A task's time-out is due: its attempt fails (once that is recorded, the timer is acknowledged). One that
   * reaches a replay before the replay reached its attempt waits for that attempt only (see whenReached): it
   * waited for the driver's idle, that is for a sibling branch's re-sent call (model finding G12). It then
   * waits for the replay to take and store what the attempt recorded before the time-out came, until the
   * attempt goes live (see AttemptTimeouts.live) or ends: applied at once, a composite whose children had all
   * ended before its deadline, its own end unrecorded when its engine died, failed task_timeout on the replay
   * the time-out started (replayed_attempt_timeout_test.ts). One macrotask was not enough when that replay
   * writes: a child's end recorded as a wake-up (a sleep, a sub-workflow) or a nested container's end is
   * stored by the replay (outside review brkE).
   */
  private async expireAttempt(taskExecId: string, payload: unknown): Promise<void> {
    await this.whenReached(() => this.timeouts.has(taskExecId));
    await this.whenReached(() => this.timeouts.liveOrEnded(taskExecId));
    await this.timeouts.expire(taskExecId, (payload as { attempt?: number } | null)?.attempt);
  }

  /** Awaits a durable record; an outcome that cannot be recorded gives the execution up (see abandon). */
  async recorded(write: Promise<void>): Promise<void> {
    try {
      await this.track(write);
    } catch (e) {
      this.abandon(e);
      throw e;
    }
  }

  /** Ends the execution at once; its running sub-workflows (known here, or found in the state) too. */
  cancel(reason: string): Promise<void> {
    return this.delivery(async () => {
      if (this.ended) return;
      await this.end(
        { status: "CANCELED", output: null, error: { message: reason, code: "canceled" } },
        `canceled: ${reason}`,
        () => this.services.events.workflowCanceled(this, reason),
      );
    });
  }

  pause(): Promise<void> {
    return this.delivery(async () => {
      if (this.ended || this.paused) return;
      this.paused = true;
      this.closeGate();
      await this.recorded(this.services.events.workflowPaused(this));
    });
  }

  resume(): Promise<void> {
    return this.delivery(async () => {
      if (this.ended || !this.paused) return;
      this.paused = false;
      await this.recorded(this.services.events.workflowResumed(this));
      this.openGate?.();
    });
  }

  /**
   * Runs a delivery; the driver does not park while one is in progress. A delivery to a driver that was
   * given up throws, so its command is redelivered and taken by the replay instead of acknowledged and lost.
   */
  private async delivery<T>(fn: () => Promise<T>): Promise<T> {
    this.deliveries++;
    try {
      const result = await fn();
      if (this.abandoned) throw new ExecutionEnded("the execution was given up; the command is redelivered");
      return result;
    } finally {
      this.deliveries--;
      this.scheduleParkCheck();
    }
  }

  /**
   * Keeps the driver from parking until the returned function is called: the command that activated it has
   * its pending controls and its own effect delivered first (finding G9: a driver idle after a pending resume
   * parked before the activating signal was delivered to it).
   */
  holdParking(): () => void {
    this.deliveries++;
    let held = true;
    return () => {
      if (!held) return;
      held = false;
      this.deliveries--;
      this.scheduleParkCheck();
    };
  }

  /**
   * Resolves once `reached()` holds, checked as each wait is registered and as each time-bounded attempt is
   * registered, goes live or ends, or once nothing runs (the wake-up is then moot if it still does not hold).
   * A delivery for a task the replay has not reached yet waits for that task only: it waited for the driver's
   * idle, that is for every call of a sibling branch to end, and a wait's time-out that activated the replay
   * of a parallel after a crash was recorded only after the sibling's re-sent call ended (model crash seed
   * 140578: in each engine's life, shorter than the call, the time-out waited, and the call's failure became
   * the parallel's first). A task the replay reaches in its first synchronous run (a parallel that is the
   * first step) was found at once; one after other steps was reached a few awaits later, after the check.
   */
  private whenReached(reached: () => boolean): Promise<void> {
    if (this.ended || reached()) return Promise.resolve();
    return new Promise((resolve) => {
      // Whichever comes first; the other's entry is removed (a signal flood would pile them up till idle).
      const done = () => {
        this.reachWatchers.delete(watcher);
        this.idleWaiters = this.idleWaiters.filter((waiter) => waiter !== done);
        resolve();
      };
      const watcher = { reached, resolve: done };
      this.reachWatchers.add(watcher);
      this.idleWaiters.push(done);
      this.scheduleParkCheck();
    });
  }

  /** A wait was registered, or a time-bounded attempt registered, went live or ended: deliveries go on. */
  private noticeReached(): void {
    for (const watcher of [...this.reachWatchers]) {
      if (watcher.reached()) watcher.resolve();
    }
  }

  // ---- the flow ----

  private async program(): Promise<void> {
    const tasks = this.workflow.config.tasks;
    let current: TaskConfig | undefined = tasks[0];
    let lastOutput: unknown = null;
    let error: ScopeValues["error"];
    while (current) {
      const outcome = await this.runTask(current, current.id, { results: this.rootResults, error });
      if (outcome.ok) {
        lastOutput = outcome.output;
        error = undefined;
        if (current.final) break;
        current = this.nextAfterSuccess(current, outcome.route);
      } else {
        const next = outcome.next ?? current.on_error?.next;
        if (!next) return await this.failWorkflow(outcome.failure);
        error = { message: outcome.failure.message, code: outcome.failure.code };
        current = this.workflow.tasks.get(next);
      }
    }
    const outputs = this.workflow.config.outputs;
    const output = outputs
      ? renderWorkflowOutputs(outputs, this.context({ output: lastOutput }), this.workflow.config.id)
      : lastOutput;
    if (this.ended) return;
    this.ended = true;
    this.result = { status: "SUCCESS", output };
    try {
      await this.track(this.services.events.workflowSucceeded(this, output));
    } catch (e) {
      if (!(e instanceof MessageTooLargeError)) {
        this.abandon(e);
        throw e;
      }
      // Nothing was stored and a replay would end the same way: the execution fails (output_too_large).
      this.ended = false;
      return await this.failWorkflow(toTaskFailure(e));
    }
    this.finish("ended");
  }

  /**
   * A recorded outcome as the flow needs it: visible to templates as on the first run (with the children
   * of a composite or parallel), a wait's time-out going to its `on_timeout`, a router's route rebuilt.
   */
  private replayed(task: TaskConfig, key: string, scope: Scope, recorded: Outcome): Outcome {
    if (!recorded.ok) {
      // A failed composite or parallel published its children's results too (inContainer).
      restoreChildResults(this, task, key, scope.results);
      scope.results.set(task.id, failedView(recorded.failure));
      return recorded;
    }
    const outcome = replayedSuccess({ driver: this, task, key, scope }, recorded);
    scope.results.set(task.id, { output: recorded.output, status: recorded.skipped ? "SKIPPED" : "SUCCESS" });
    return outcome;
  }

  private nextAfterSuccess(task: TaskConfig, route: string | TaskConfig | undefined): TaskConfig | undefined {
    if (route !== undefined) return typeof route === "string" ? this.workflow.tasks.get(route) : route;
    if (task.on_success?.next) return this.workflow.tasks.get(task.on_success.next);
    const list = this.workflow.config.tasks;
    const index = list.indexOf(task);
    return index >= 0 ? list[index + 1] : undefined;
  }

  recordOf(key: string): RecordedTask | undefined {
    return this.replay.tasks.get(key);
  }

  /** The recorded terminal outcome of the task at `key`, where (stream position) and in which attempt. */
  recordedAt(task: TaskConfig, key: string): { outcome: Outcome; seq: number; attempt: number } | undefined {
    const record = this.replay.tasks.get(key);
    const outcome = recordedOutcome(task, record);
    return outcome && { outcome, seq: record?.seq ?? 0, attempt: record?.attempt ?? 1 };
  }

  /**
   * One task, with replay, `if`, retries, time-out and recording. `key` identifies the task within the
   * execution (children: `parent/child`, collection items: `parent[i]`), so a replay finds its record.
   */
  async runTask(task: TaskConfig, key: string, scope: Scope): Promise<Outcome> {
    const record = this.replay.tasks.get(key);
    const recorded = recordedOutcome(task, record);
    // Under way before this replay, its branch given up before the replay reached it (E5).
    if (record && !recorded && scope.abort?.aborted && !this.ended) {
      return await giveUpReplayed(this, this.replay.tasks, task, key, record, scope);
    }
    this.assertRunning(scope);
    if (recorded) return this.replayed(task, key, scope, recorded);
    // A pause holds back new tasks; one dispatched before it (a wait, a container with a wait inside) goes
    // on, and its wait may take its signal or its timer.
    if (!record) {
      scope.live?.();
      await this.gate(scope);
      // Its branch may have been given up while the gate was awaited (the next child of a race or fail_fast
      // with `max_workers`, started as the decision came): not dispatched then, since nothing would record its
      // end and it read SCHEDULED for as long as the execution went on (outside review brk-eng3 E8).
      this.assertRunning(scope);
    }
    const execId = record?.execId ?? uuidv7();
    if (!record) this.services.events.taskDispatched(this, task, key, execId, scope.parentExecId);
    let base: TemplateContext;
    // `if` is evaluated again on a replay only when nothing of the task was recorded past its dispatch: a
    // start, a wait, a retry show that it held, and rendered again (it may read `now()`, `.env`, a definition
    // changed since) it recorded a task whose call had run SKIPPED (outside review B1).
    const decidesIf = task.if !== undefined && !(record && (record.started || record.status !== "running"));
    let condition = true;
    // The task's own `env` is part of what its templates read as `.env` (its `if` included). One that fails to
    // render does not fail a task whose `if`, read without it, skips the task: the env may read what exists
    // only when the guard holds (the output of a task the same guard skipped); such a task was skipped before
    // its env was rendered for its templates (b49f8e0), and failed template_error after (outside review
    // breaker3).
    let envFailure: TaskFailure | undefined;
    try {
      base = this.templates.taskContext(task, scope, key);
    } catch (e) {
      if (!(e instanceof TaskFailure)) throw e;
      envFailure = e;
      base = this.templates.context(scope);
    }
    let failure = envFailure;
    try {
      if (decidesIf) condition = renderCondition(task.if, base, key, "if");
    } catch (e) {
      if (!(e instanceof TaskFailure)) throw e;
      failure = envFailure ?? e; // condition stays true: the task fails
    }
    if (failure && condition) {
      // A template error in `env` or `if` fails the task like one in `with` (docs/templates.md "Errors"):
      // recorded FAILED, so its `on_error` applies and the state carries the error.
      const attempt = record?.attempt ?? 1;
      await this.track(this.services.events.taskFailed(this, key, execId, failure, attempt));
      scope.results.set(task.id, failedView(failure));
      return { ok: false, failure };
    }
    if (!condition) {
      await this.track(this.services.events.taskSucceeded(this, key, execId, null, 1, true));
      scope.results.set(task.id, { output: null, status: "SKIPPED" });
      return { ok: true, output: null, skipped: true };
    }
    const runner = runnerOf(task);
    const maxAttempts = task.retry?.max_attempts ?? 1;
    let attempt = record?.attempt ?? 1;
    // The earlier attempts of a container this replay goes on with published their children as they ended
    // (inContainer): a replay after a retry's back-off lost them.
    if (record && attempt > 1) restoreChildResults(this, task, key, scope.results, attempt - 1);
    // A tool or agent call that was running when its engine died runs again: that is its next attempt.
    const sentAgain = record?.status === "running" && record.started && runner.isCall?.(this, task);
    if (sentAgain) attempt++;
    // The record describes the attempt that was under way; a retry starts afresh.
    let resumed = record?.attempt === attempt ? record : undefined;
    // The input recorded with the start of the attempt under way, which its replay (or, for a call, the
    // attempt that sends it again) takes rather than a new rendering: `now()`, or a definition changed since,
    // would give the call or the items another input than the run's (outside review E2, leftover of issue
    // 9). Absent (an older engine's start, or one too large for a bus message): rendered again.
    let recordedInput = runner.replaysInput && (resumed?.started || sentAgain)
      ? record?.startedInputJson
      : undefined;
    // A retry scheduled before this replay (parked in its back-off, or its engine died) waits for its timer
    // if it is not due yet: a crash does not change when the next attempt runs (outside review F7).
    if (resumed?.status === "retry_scheduled" && resumed.retryDueMs !== undefined) {
      await this.backOff(task, key, execId, attempt, resumed.retryDueMs, scope);
    }
    let backOffDueMs: number | undefined;
    while (true) {
      this.assertRunning(scope);
      if (backOffDueMs !== undefined) {
        await this.backOff(task, key, execId, attempt, backOffDueMs, scope, true);
        backOffDueMs = undefined;
      }
      const ac = new AbortController();
      const timed = this.timeouts.arm(task, key, execId, attempt, resumed, ac);
      const attemptScope: Scope = {
        ...scope,
        abort: anySignal(scope.abort, ac.signal),
        live: timed
          ? () => {
            timed.live();
            scope.live?.();
          }
          : scope.live,
      };
      let running: Promise<Outcome> | undefined;
      try {
        // A call's input is rendered once per attempt and recorded with its start (the state shows it).
        const input = recordedInput ? parseJsonBytes(recordedInput) : runner.input?.(task, base, key);
        if (!resumed?.started && !isWaiting(resumed)) {
          attemptScope.live?.();
          // A runner that records its start itself stores it with what it decided (see recordsStart).
          if (runner.durableStart) {
            // Stored before anything of the attempt runs: its replay takes this input (see durableStart).
            await this.recorded(this.services.events.taskStartedStored(this, key, execId, attempt, input));
          } else if (!runner.recordsStart) {
            this.services.events.taskStarted(this, key, execId, attempt, input);
          }
        }
        running = this.attempt(task, key, execId, attempt, attemptScope, base, resumed, input);
        const result = await abortable(running, attemptScope.abort!);
        this.assertRunning(scope); // Ended (canceled, timed out) while the attempt ran: its result is moot.
        if (result.ok === false) {
          await this.track(this.services.events.taskFailed(this, key, execId, result.failure, attempt));
          scope.results.set(task.id, failedView(result.failure));
          return result;
        }
        let output = result.output;
        if (task.outputs && !runner.rendersOutputs) {
          output = renderField(
            task.outputs,
            { ...this.context(attemptScope), env: base.env, output },
            key,
            "outputs",
          );
        }
        await this.track(
          this.services.events.taskSucceeded(
            this,
            key,
            execId,
            output,
            attempt,
            false,
            result.usage,
            result.routeName,
          ),
        );
        scope.results.set(task.id, { output, status: "SUCCESS" });
        return { ok: true, output, route: result.route };
      } catch (e) {
        // The engine could not record (NATS is gone for longer than the publish deadline): not the task's fault.
        // The driver is given up at once, not when the error reaches the program: in a parallel, a sibling
        // branch waiting for a signal or a sub-workflow held it there, the execution active and its outcome
        // unrecorded, for as long as the sibling waited.
        if (natsOutOfReach(e)) {
          this.abandon(e);
          throw e;
        }
        if (e instanceof ExecutionEnded) throw e;
        if (scope.abort?.aborted) {
          // Its branch was given up (or its parent timed out): it ends here, recorded as canceled.
          this.tasks.giveUp(execId);
          // A tool's or agent's runner published it already, to stop the call: a second one was a duplicate.
          if (!runner.isCall?.(this, task)) this.services.events.taskCanceled(this, key, execId);
          // What the attempt ran stops at the abort (a container's children given up and shown in its scope,
          // which it publishes as it ends), before the task shows CANCELED to the tasks after it.
          if (running) await running.then(() => {}, () => {});
          scope.results.set(task.id, canceledView());
          throw scope.abort.reason;
        }
        // Timed out: what the attempt started is stopped first (its sub-workflow canceled, its open children
        // recorded canceled), then its failure or retry is recorded. Recorded first, an end or a crash in
        // between left them running for good: a replay never goes back into an attempt that has an outcome
        // (outside review E5, model finding G10). The runners stop at the abort; their errors are its echo.
        if (ac.signal.aborted && running) await running.then(() => {}, () => {});
        const failure = toTaskFailure(e);
        this.assertRunning(scope);
        if (failure.retryable && attempt < maxAttempts) {
          const delay = Math.max(backoffDelay(task.retry, attempt), failure.retryAfterMs);
          const dueMs = Date.now() + delay;
          // The timer is stored before the retry is recorded: a recorded retry always has its wake-up.
          await this.track(this.services.timers.schedule(this, key, execId, "retry", dueMs, attempt + 1));
          await this.track(
            this.services.events.retryScheduled(this, key, execId, attempt + 1, delay, failure),
          );
          attempt++;
          resumed = undefined;
          recordedInput = undefined; // A retry renders its input afresh.
          // Waited at the top of the loop, once this attempt's time-out is done (see finally): a wake-up
          // meanwhile expires overdue attempts and waits for them to settle.
          backOffDueMs = dueMs;
          continue;
        }
        await this.track(this.services.events.taskFailed(this, key, execId, failure, attempt));
        scope.results.set(task.id, failedView(failure));
        return { ok: false, failure };
      } finally {
        ac.abort(ATTEMPT_ENDED);
        timed?.done();
      }
    }
  }

  /**
   * A retry's back-off: a durable timer in TASK_CMDS like a sleep's (stored before its `task.retry_scheduled`;
   * on a replay stored again under the same message id, deduplicated), so the execution parks meanwhile and
   * a crash or a long delay (engine/long_timer.ts) changes nothing. The timer's wake-up records nothing: the
   * recorded due time says the attempt may run. Then the gate: a pause holds the next attempt back.
   *
   * A back-off that its branch's give-up interrupts (a decided race or fail_fast, a parent's time-out) ends the
   * task canceled, as an attempt given up while it runs does: with no attempt running, no runner recorded it,
   * and the task read RETRY_SCHEDULED beside its failed parent until the execution ended (outside review
   * brk-eng3 E7). An execution's own end records its open tasks itself (cancelOpenTasks).
   */
  private async backOff(
    task: TaskConfig,
    key: string,
    execId: string,
    attempt: number,
    dueMs: number,
    scope: Scope,
    stored = false,
  ): Promise<void> {
    try {
      if (dueMs > Date.now()) {
        if (!stored) {
          await this.track(this.services.timers.schedule(this, key, execId, "retry", dueMs, attempt));
        }
        await this.waitFor(execId, { kind: "backoff", taskId: key, attempt, scope });
      }
      await this.gate(scope);
    } catch (e) {
      if (scope.abort?.aborted && !this.ended) {
        this.tasks.giveUp(execId);
        this.services.events.taskCanceled(this, key, execId);
        scope.results.set(task.id, canceledView());
      }
      throw e;
    }
  }

  /** One attempt of a task, by the runner of its type. */
  private attempt(
    task: TaskConfig,
    key: string,
    execId: string,
    attempt: number,
    scope: Scope,
    context: TemplateContext,
    record: RecordedTask | undefined,
    input: unknown,
  ): Promise<Outcome> {
    return runAttempt({ driver: this, task, key, execId, attempt, scope, context, record, input });
  }

  childStarted(childExecId: string): void {
    this.children.add(childExecId);
  }

  childEnded(childExecId: string): void {
    this.children.delete(childExecId);
  }

  async cancelChildren(childExecIds: string[], reason: string): Promise<void> {
    await this.services.children.cancel(this, childExecIds, reason).catch((e) =>
      log.warn("sub-workflows {children} of {execId} not canceled: {error}", {
        children: childExecIds,
        execId: this.execId,
        error: e instanceof Error ? e.message : String(e),
      })
    );
  }

  // ---- waiting, parking and bookkeeping ----

  /**
   * Records the start of a wait for `signalId` (`write`, already under way). From its first byte sent the wait
   * may take a signal: its record may be stored, read by the sender and answered before the write's
   * acknowledgement reaches this engine and the wait is registered (later still when the publish is tried
   * again at load); such a signal found no wait and was dropped, and the execution waited for good.
   * deliverSignal counts these waits and tries them once the driver is idle, by when they are registered. A
   * wait counts until waitFor registers it (not only until the write resolves: a delivery may run between the
   * two), or until the write fails.
   */
  async startSignalWait(taskExecId: string, signalId: string, write: Promise<void>): Promise<void> {
    this.startingWaits.set(taskExecId, signalId);
    try {
      await this.track(write);
    } catch (e) {
      this.startingWaits.delete(taskExecId);
      throw e;
    }
  }

  /**
   * Registers a wait; resolves when it is delivered. The driver parks if nothing else is running. A wait
   * whose branch is given up is withdrawn (its wake-up, if it comes, is then moot).
   */
  waitFor(
    taskExecId: string,
    waiter: Omit<Waiter, "resolve">,
  ): Promise<{ reason: string; payload: unknown }> {
    // Counted as starting until now (see startSignalWait): a signal delivered in between finds it either way.
    this.startingWaits.delete(taskExecId);
    const abort = waiter.scope?.abort;
    if (abort?.aborted) return Promise.reject(abort.reason);
    return new Promise((resolve, reject) => {
      const withdraw = () => {
        if (this.waiters.get(taskExecId)?.resolve !== entry.resolve) return;
        this.waiters.delete(taskExecId);
        reject(abort!.reason);
        this.scheduleParkCheck();
      };
      const entry: Waiter = {
        ...waiter,
        // The execution ended while this branch waited: the branch stops, it records nothing.
        resolve: (woken) => {
          abort?.removeEventListener("abort", withdraw);
          woken.reason === "ended" ? reject(new ExecutionEnded()) : resolve(woken);
        },
      };
      abort?.addEventListener("abort", withdraw, { once: true });
      this.waiters.set(taskExecId, entry);
      waiter.scope?.live?.();
      this.noticeReached();
      this.scheduleParkCheck();
    });
  }

  /**
   * Counts I/O in flight so the driver knows when it is only waiting. With `abort`, the branch stops waiting
   * for the I/O when it is given up (the I/O's result is then ignored).
   */
  async track<T>(promise: Promise<T>, abort?: AbortSignal): Promise<T> {
    this.busy++;
    try {
      return await abortable(promise, abort);
    } finally {
      this.busy--;
      if (this.busy === 0) this.scheduleParkCheck();
    }
  }

  /**
   * Records every task with no end yet canceled, before the execution's end (outside review B2: a canceled
   * execution's tasks read CANCELED with no `ended_at` and no event of their own, and a tool call's cancel was
   * recorded after the end). Stored in parallel, each awaited: nothing of the execution is recorded after its
   * end. The runtime stops a tool or agent call on its `task.canceled`.
   */
  private async cancelOpenTasks(): Promise<void> {
    await this.tasks.settled();
    const open = this.tasks.open();
    if (open.length === 0) return;
    await this.recorded(
      Promise.all(open.map(([execId, key]) => this.services.events.taskEndedWithExecution(this, key, execId)))
        .then(() => {}),
    );
  }

  private scheduleParkCheck(): void {
    if (this.parkTimer !== undefined) return;
    // Deferred: a wait resolved just now lets its branch continue (microtasks) before the check runs.
    this.parkTimer = setTimeout(() => {
      this.parkTimer = undefined;
      if (this.busy > 0 && !this.ended) return;
      for (const resolve of this.idleWaiters.splice(0)) resolve();
      const waiting = this.waiters.size > 0 || this.paused;
      if (!this.ended && this.deliveries === 0 && waiting) this.finish("parked");
    }, 0);
  }

  private finish(result: DriverResult): void {
    if (result === "parked") this.parked = true;
    this.deadline.disarm(result === "ended");
    for (const resolve of this.idleWaiters.splice(0)) resolve();
    if (result !== "parked") {
      for (const waiter of this.waiters.values()) waiter.resolve({ reason: "ended", payload: null });
      this.waiters.clear();
      this.timeouts.clear();
    }
    this.settle(result);
  }

  private assertRunning(scope?: Scope): void {
    if (this.ended) throw new ExecutionEnded();
    if (scope?.abort?.aborted) throw scope.abort.reason;
  }

  private async gate(scope: Scope): Promise<void> {
    this.assertRunning(scope);
    while (this.paused && this.pauseGate) {
      await abortable(this.pauseGate, scope.abort);
      this.assertRunning(scope);
    }
  }

  private closeGate(): void {
    this.pauseGate = new Promise((resolve) => {
      this.openGate = () => {
        this.pauseGate = undefined;
        resolve();
      };
    });
  }

  async failWorkflow(failure: TaskFailure): Promise<void> {
    if (this.ended) return;
    await this.end(
      { status: "FAILED", output: null, error: { message: failure.message, code: failure.code } },
      `failed: ${failure.message}`,
      () => this.services.events.workflowFailed(this, failure),
    );
  }

  private async timeOutWorkflow(): Promise<void> {
    if (this.ended) return;
    await this.end(
      { status: "TIMED_OUT", output: null, error: { message: "timed out", code: "workflow_timeout" } },
      "timed out",
      () => this.services.events.workflowTimedOut(this),
    );
  }

  /**
   * Ends the execution canceled, failed or timed out: its open tasks are recorded canceled and its running
   * sub-workflows told to cancel, both before its end (outside review D2, D3). A replay skips an ended
   * execution, so a child cancel sent after the end was lost for good when the engine died in between; sent
   * first, a failure to send gives the driver up (the command comes back and the end is replayed, each child's
   * cancel stored once by its message id), and nothing of the execution is recorded after its end (B2).
   */
  private async end(
    result: NonNullable<ExecutionDriver["result"]>,
    reason: string,
    record: () => Promise<void>,
  ): Promise<void> {
    this.ended = true;
    this.result = result;
    // A call no runtime has taken yet (none running, one restarting) is not sent again: a runtime that came
    // up later ran it after the end (outside review E1). One already running is told to stop by its
    // task.canceled (cancelOpenTasks).
    this.endController.abort(new ExecutionEnded());
    await this.cancelOpenTasks();
    await this.recorded(this.services.children.cancelAll(this, [...this.children], reason));
    await this.recorded(record());
    this.finish("ended");
  }

  /** The template context of this execution, with the scope's own values (see ExecutionTemplates). */
  context(scope: Partial<Scope> = {}): TemplateContext {
    return this.templates.context(scope);
  }

  /** The env a task (and its tool or agent) sees. */
  env(
    task: TaskConfig | undefined,
    own: Record<string, string> | undefined,
    base: TemplateContext | undefined,
    key?: string,
  ): Record<string, string> {
    return this.templates.env(task, own, base, key);
  }
}

/**
 * NATS did not store a write (PublishError) or answer a read (ReadUnansweredError): not the task's fault. The
 * driver gives the execution up, its command comes back and the replay goes on from what was recorded.
 */
function natsOutOfReach(e: unknown): boolean {
  return e instanceof PublishError || e instanceof ReadUnansweredError;
}
