/**
 * Drives one workflow execution in memory by replaying its history: a task whose outcome is recorded
 * returns that outcome without running again; the first task without one runs. The driver parks (and is
 * dropped from memory) when every branch waits for something outside it (a signal, a timer, a child
 * workflow); the wake-up replays the history again and delivers what it waited for.
 *
 * Failure semantics: a task's result is recorded (one awaited JetStream write) before the next task is
 * dispatched, so a crash re-runs at most the unrecorded attempt of each running branch.
 */
import { PublishError } from "../../../pkg/nats/mod.ts";
import type { TemplateContext } from "../../../pkg/tplengine/mod.ts";
import { TaskFailure, toTaskFailure } from "../../failure.ts";
import { uuidv7 } from "../../ids.ts";
import type { RecordedTask, ReplayState } from "../../history/replay_state.ts";
import { parseDuration, type Project, resolveUse, type Workflow } from "../project/mod.ts";
import type { TaskConfig } from "../task/schema.ts";
import { toolTimeoutMs } from "../task/leaf_executor.ts";
import { mergeEnv, renderField, type ScopeValues, type TaskResultView } from "../task/template_scope.ts";
import type { DriverServices } from "./driver_services.ts";
import { runContainer } from "./containers.ts";

/** A task's outcome as the flow sees it. */
export type Outcome =
  | { ok: true; output: unknown; route?: string | TaskConfig; skipped?: boolean; usage?: unknown }
  | { ok: false; failure: TaskFailure; next?: string };

/**
 * How a run of the driver ends: the execution ended, it parked (only waits are left), or the driver gave
 * it up because its history could not be written (the command is redelivered and replayed later).
 */
export type DriverResult = "ended" | "parked" | "abandoned";

/** Thrown into abandoned branches once the execution has ended (canceled, timed out, failed elsewhere). */
export class ExecutionEnded extends Error {
  override name = "ExecutionEnded";
}

export interface Waiter {
  kind: "signal" | "timer" | "child" | "pause";
  signalId?: string;
  taskId: string;
  condition?: string;
  resolve(value: { reason: string; payload: unknown }): void;
}

export interface Scope extends ScopeValues {
  /** Exec id of the parallel, collection or composite task this one runs under. */
  parentExecId?: string;
}

const DEFAULT_AGENT_TIMEOUT_MS = 300_000;

export class ExecutionDriver {
  readonly waiters = new Map<string, Waiter>();
  /** Wake-ups that arrived before their task registered its wait (e.g. during replay). */
  private readonly early = new Map<string, { reason: string; payload: unknown }>();
  private busy = 0;
  /** Given up (see abandon): commands delivered to it must come back, not be acknowledged. */
  private abandoned = false;
  private deliveries = 0;
  private idleWaiters: Array<() => void> = [];
  private ended = false;
  private paused: boolean;
  private pauseGate?: Promise<void>;
  private openGate?: () => void;
  private settle!: (result: DriverResult) => void;
  private readonly settled: Promise<DriverResult>;
  private readonly results: Record<string, TaskResultView> = {};
  private parkTimer?: ReturnType<typeof setTimeout>;
  private deadlineTimer?: ReturnType<typeof setTimeout>;
  private baseEnv?: Record<string, string>;
  /** Sub-workflows running for this execution: a cancel reaches them too. */
  private readonly children = new Set<string>();

  constructor(
    readonly services: DriverServices,
    readonly project: Project,
    readonly workflow: Workflow,
    readonly execId: string,
    readonly correlationId: string,
    readonly replay: ReplayState,
  ) {
    this.paused = replay.paused;
    this.settled = new Promise((resolve) => this.settle = resolve);
  }

  /** How the execution ended, once it has: what a parent workflow is told. */
  result?: { status: string; output: unknown; error?: { message: string; code: string } };

  get isEnded(): boolean {
    return this.ended;
  }

  /** Runs until the execution ends, parks, or is abandoned. */
  run(): Promise<DriverResult> {
    this.armWorkflowTimeout();
    if (this.paused) this.closeGate();
    this.program().catch((e) => {
      if (e instanceof ExecutionEnded) return;
      if (e instanceof PublishError) return this.abandon();
      this.failWorkflow(toTaskFailure(e)).catch(() => this.abandon());
    });
    return this.settled;
  }

  /**
   * Gives the execution up without ending it: its outcome could not be recorded, so nothing may go on from
   * memory. The activating command is redelivered and the execution replayed from what was recorded.
   */
  abandon(): void {
    this.abandoned = true;
    this.ended = true;
    this.finish("abandoned");
  }

  // ---- deliveries from outside ----

  /**
   * A signal for this execution: resolves the matching wait, if its condition accepts the payload. A driver
   * that is still replaying may not have reached its wait yet, so an unmatched signal is tried again once
   * the driver is idle; a signal nothing waits for then is dropped (CONFIG.md: it leaves waits waiting).
   */
  deliverSignal(signalId: string, payload: unknown): Promise<boolean> {
    return this.delivery(async () => {
      if (await this.matchSignal(signalId, payload)) return true;
      await this.whenIdle();
      return await this.matchSignal(signalId, payload);
    });
  }

  private async matchSignal(signalId: string, payload: unknown): Promise<boolean> {
    for (const [taskExecId, waiter] of this.waiters) {
      if (waiter.kind !== "signal" || waiter.signalId !== signalId) continue;
      if (waiter.condition !== undefined) {
        const accepted = renderField(
          waiter.condition,
          this.context({ signal: { payload } }),
          waiter.taskId,
          "condition",
        );
        if (accepted !== true && accepted !== "true") continue;
      }
      this.waiters.delete(taskExecId);
      await this.recorded(this.services.events.waitingEnded(this, waiter.taskId, taskExecId, payload));
      waiter.resolve({ reason: "signal", payload });
      return true;
    }
    return false;
  }

  /** A timer, a wait's time-out or a child workflow's end, addressed to one task execution. */
  deliverResume(taskExecId: string, reason: string, payload: unknown): Promise<void> {
    return this.delivery(async () => {
      if (reason === "workflow_timeout") return await this.timeOutWorkflow();
      if (!this.waiters.has(taskExecId)) await this.whenIdle();
      const waiter = this.waiters.get(taskExecId);
      if (!waiter) {
        // Not waiting (yet): a replay that has not reached the task keeps it for when it does.
        this.early.set(taskExecId, { reason, payload });
        return;
      }
      if (reason === "timeout" && waiter.kind !== "signal") return;
      this.waiters.delete(taskExecId);
      // Recorded before the wait resolves, and before the command that woke it is acknowledged: a replay
      // after a crash takes the recorded wake-up instead of waiting for a command that is gone.
      await this.recorded(
        reason === "timeout"
          ? this.services.events.waitingTimedOut(this, waiter.taskId, taskExecId)
          : this.services.events.waitingEnded(this, waiter.taskId, taskExecId, payload),
      );
      waiter.resolve({ reason, payload });
    });
  }

  /** Awaits a durable record; an outcome that cannot be recorded gives the execution up (see abandon). */
  private async recorded(write: Promise<void>): Promise<void> {
    try {
      await this.track(write);
    } catch (e) {
      this.abandon();
      throw e;
    }
  }

  /** Ends the execution at once; its running sub-workflows (known here, or found in the state) too. */
  cancel(reason: string): Promise<void> {
    return this.delivery(async () => {
      if (this.ended) return;
      this.ended = true;
      this.result = { status: "CANCELED", output: null, error: { message: reason, code: "canceled" } };
      await this.recorded(this.services.events.workflowCanceled(this, reason));
      await this.services.children.cancelAll(this, [...this.children], reason).catch(
        () => {/* logged there */},
      );
      this.finish("ended");
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

  /** Resolves once nothing runs: every branch waits, is paused, or the execution ended. */
  private whenIdle(): Promise<void> {
    if (this.ended) return Promise.resolve();
    return new Promise((resolve) => {
      this.idleWaiters.push(resolve);
      this.scheduleParkCheck();
    });
  }

  // ---- the flow ----

  private async program(): Promise<void> {
    const tasks = this.workflow.config.tasks;
    let current: TaskConfig | undefined = tasks[0];
    let last: TaskConfig | undefined;
    let lastOutput: unknown = null;
    let error: ScopeValues["error"];
    while (current) {
      const outcome = await this.runTask(current, current.id, { error });
      last = current;
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
      ? renderField(outputs, this.context({ output: lastOutput }), last?.id ?? "(workflow)", "outputs")
      : lastOutput;
    if (this.ended) return;
    this.ended = true;
    this.result = { status: "SUCCESS", output };
    await this.recorded(this.services.events.workflowSucceeded(this, output));
    this.finish("ended");
  }

  /** A recorded outcome as the flow needs it: visible to templates, and a router's route rebuilt. */
  private replayed(task: TaskConfig, key: string, scope: Scope, recorded: Outcome): Outcome {
    if (!recorded.ok) return recorded;
    this.results[task.id] = { output: recorded.output, status: recorded.skipped ? "SKIPPED" : "SUCCESS" };
    if (task.type !== "router" || recorded.skipped) return recorded;
    // The condition is pure and reads only what was recorded before it: it routes the same way again
    // (the recorded output may have been reshaped by `outputs`, so it is not read back).
    return { ...recorded, route: routeOf(task, this.context(scope), key).route };
  }

  private nextAfterSuccess(task: TaskConfig, route: string | TaskConfig | undefined): TaskConfig | undefined {
    if (route !== undefined) return typeof route === "string" ? this.workflow.tasks.get(route) : route;
    if (task.on_success?.next) return this.workflow.tasks.get(task.on_success.next);
    const list = this.workflow.config.tasks;
    const index = list.indexOf(task);
    return index >= 0 ? list[index + 1] : undefined;
  }

  /**
   * One task, with replay, `if`, retries and recording. `key` identifies the task within the execution
   * (children: `parent/child`, collection items: `parent[i]`), so a replay finds its record.
   */
  async runTask(task: TaskConfig, key: string, scope: Scope): Promise<Outcome> {
    this.assertRunning();
    const record = this.replay.tasks.get(key);
    const recorded = recordedOutcome(record);
    if (recorded) return this.replayed(task, key, scope, recorded);
    const waited = record?.status === "waiting" || record?.status === "woken" ||
      record?.status === "wait_timed_out";
    // A pause holds back new work; a wait that already started keeps waiting (and may receive its signal).
    if (!waited) await this.gate();
    const execId = record?.execId ?? uuidv7();
    if (!record) this.services.events.taskDispatched(this, task, key, execId, scope.parentExecId);
    const base = this.context(scope);
    // `if` is pure: evaluated again on a replay that has no outcome for the task yet.
    if (task.if !== undefined && !waited) {
      const condition = renderField(task.if, base, key, "if");
      if (condition === false || condition === "false") {
        await this.track(this.services.events.taskSucceeded(this, key, execId, null, 1, true));
        this.results[task.id] = { output: null, status: "SKIPPED" };
        return { ok: true, output: null, skipped: true };
      }
    }
    const maxAttempts = task.retry?.max_attempts ?? 1;
    let attempt = record?.attempt ?? 1;
    while (true) {
      this.assertRunning();
      try {
        if (!waited) this.services.events.taskStarted(this, key, execId, attempt);
        const result = await this.attempt(task, key, execId, attempt, scope, base, record);
        this.assertRunning(); // Ended (canceled, timed out) while the attempt ran: its result is moot.
        if (result.ok === false) {
          await this.track(this.services.events.taskFailed(this, key, execId, result.failure, attempt));
          return result;
        }
        let output = result.output;
        if (task.outputs && task.type !== "aggregate") {
          output = renderField(task.outputs, { ...base, output }, key, "outputs");
        }
        await this.track(
          this.services.events.taskSucceeded(this, key, execId, output, attempt, false, result.usage),
        );
        this.results[task.id] = { output, status: "SUCCESS" };
        return { ok: true, output, route: result.route };
      } catch (e) {
        // The engine could not record (NATS is gone for longer than the publish deadline): not the task's fault.
        if (e instanceof ExecutionEnded || e instanceof PublishError) throw e;
        const failure = toTaskFailure(e);
        this.assertRunning();
        if (failure.retryable && attempt < maxAttempts) {
          const delay = Math.max(backoffDelay(task, attempt), failure.retryAfterMs);
          await this.track(
            this.services.events.retryScheduled(this, key, execId, attempt + 1, delay, failure),
          );
          await this.track(new Promise((r) => setTimeout(r, delay)));
          attempt++;
          record && (record.status = "running");
          continue;
        }
        await this.track(this.services.events.taskFailed(this, key, execId, failure, attempt));
        return { ok: false, failure };
      }
    }
  }

  /** One attempt of a task by its type. */
  private async attempt(
    task: TaskConfig,
    key: string,
    execId: string,
    attempt: number,
    scope: Scope,
    context: TemplateContext,
    record: RecordedTask | undefined,
  ): Promise<Outcome> {
    switch (task.type) {
      case "basic":
        return await this.runBasic(task, key, execId, attempt, context);
      case "router": {
        const { name, route } = routeOf(task, context, key);
        if (route === undefined) {
          throw new TaskFailure(`router '${key}': no route for '${name}' and no default`, "no_route", false, {
            value: name,
          });
        }
        return { ok: true, output: { route: name }, route };
      }
      case "aggregate":
        return { ok: true, output: renderField(task.outputs, context, key, "outputs") };
      case "parallel":
      case "collection":
      case "composite":
        return { ok: true, output: await runContainer(this, task, key, execId, scope) };
      case "wait":
        return await this.runWait(task, key, execId, record);
      case "sleep": {
        if (record?.status === "woken") return { ok: true, output: null };
        if (record?.status !== "waiting") {
          const due = Date.now() + parseDuration(task.duration);
          // The timer is stored before the wait is recorded: a recorded wait always has its wake-up.
          await this.track(this.services.timers.schedule(this, key, execId, "timer", due));
          await this.track(this.services.events.waitingStarted(this, key, execId, "", due));
        }
        await this.waitFor(execId, { kind: "timer", taskId: key });
        return { ok: true, output: null };
      }
      case "signal": {
        const payload = renderField(task.signal.payload ?? null, context, key, "signal.payload");
        const target = task.target === undefined
          ? undefined
          : String(renderField(task.target, context, key, "target"));
        const delivered = await this.track(this.services.signals.send(this, task.signal.id, payload, target));
        return { ok: true, output: { signal: task.signal.id, delivered } };
      }
    }
  }

  private async runBasic(
    task: Extract<TaskConfig, { type: "basic" }>,
    key: string,
    execId: string,
    attempt: number,
    base: TemplateContext,
  ): Promise<{ ok: true; output: unknown; usage?: unknown }> {
    const resolved = resolveUse(this.project, this.workflow, task.use);
    const input = renderField(task.with ?? {}, base, key, "with");
    const call = {
      correlationId: this.correlationId,
      workflow: { id: this.workflow.id, execId: this.execId },
      task: { id: key, execId },
      attempt,
      timeoutMs: 0,
    };
    const taskTimeout = task.timeout ? parseDuration(task.timeout) : undefined;
    if (resolved.kind === "tool") {
      const tool = resolved.tool;
      call.timeoutMs = Math.min(toolTimeoutMs(tool), taskTimeout ?? Infinity);
      const env = this.env(task, tool.env, base);
      const result = await this.track(this.services.leaf.runTool(call, tool, input, env));
      return { ok: true, output: result.output };
    }
    if (resolved.kind === "agent") {
      call.timeoutMs = taskTimeout ?? DEFAULT_AGENT_TIMEOUT_MS;
      const env = this.env(task, undefined, base);
      const request = this.services.agents.prepare(
        this,
        resolved.agent,
        task.action,
        input,
        { ...base, env },
        key,
      );
      const result = await this.track(this.services.leaf.runAgent(call, request, env));
      return { ok: true, output: result.output, usage: result.usage };
    }
    const payload = await this.runChildWorkflow(resolved.workflow, key, execId, input);
    return { ok: true, output: payload };
  }

  private async runChildWorkflow(
    child: Workflow,
    key: string,
    execId: string,
    input: unknown,
  ): Promise<unknown> {
    const record = this.replay.tasks.get(key);
    let payload = record?.status === "woken" ? record.wakePayload : undefined;
    if (payload === undefined) {
      const childExecId = await this.track(this.services.children.start(this, child, key, execId, input));
      if (this.ended) {
        // Canceled while the child was being started: it must not outlive its parent.
        await this.services.children.cancelAll(this, [childExecId], "the parent ended").catch(() => {});
        throw new ExecutionEnded();
      }
      this.children.add(childExecId);
      // Recorded as a wait, so a replay (after a pause, say) waits again rather than stopping at the gate.
      if (record?.status !== "waiting") {
        await this.recorded(this.services.events.waitingStarted(this, key, execId, "", 0));
      }
      payload = (await this.waitFor(execId, { kind: "child", taskId: key })).payload;
      this.children.delete(childExecId);
    }
    const outcome = payload as { status: string; output: unknown; error?: { message: string; code: string } };
    if (outcome.status !== "SUCCESS") {
      throw new TaskFailure(
        `sub-workflow '${child.id}' ended ${outcome.status}: ${outcome.error?.message ?? ""}`.trim(),
        outcome.error?.code ?? "child_failed",
        false,
        { child_status: outcome.status },
      );
    }
    return outcome.output;
  }

  private async runWait(
    task: Extract<TaskConfig, { type: "wait" }>,
    key: string,
    execId: string,
    record: RecordedTask | undefined,
  ): Promise<Outcome | { ok: true; output: unknown }> {
    if (record?.status === "woken") return { ok: true, output: record.wakePayload ?? null };
    if (record?.status !== "waiting" && record?.status !== "wait_timed_out") {
      const due = task.timeout ? Date.now() + parseDuration(task.timeout) : 0;
      // The time-out is stored before the wait is recorded: a recorded wait always has its wake-up.
      if (due) await this.track(this.services.timers.schedule(this, key, execId, "timeout", due));
      await this.track(this.services.events.waitingStarted(this, key, execId, task.signal, due));
    }
    const woken = record?.status === "wait_timed_out"
      ? { reason: "timeout", payload: null }
      : await this.waitFor(
        execId,
        { kind: "signal", signalId: task.signal, taskId: key, condition: task.condition },
      );
    if (woken.reason === "timeout") {
      const failure = new TaskFailure(
        `wait '${key}' timed out waiting for signal '${task.signal}'`,
        "wait_timeout",
        false,
      );
      return { ok: false, failure, next: task.on_timeout };
    }
    return { ok: true, output: woken.payload };
  }

  // ---- waiting, parking and bookkeeping ----

  /** Registers a wait; resolves when it is delivered. The driver parks if nothing else is running. */
  waitFor(
    taskExecId: string,
    waiter: Omit<Waiter, "resolve">,
  ): Promise<{ reason: string; payload: unknown }> {
    const early = this.early.get(taskExecId);
    if (early && !(early.reason === "timeout" && waiter.kind !== "signal")) {
      this.early.delete(taskExecId);
      if (early.reason !== "signal") {
        // Its command was acknowledged when it arrived: record the wake-up now, as deliverResume would have.
        const write = early.reason === "timeout"
          ? this.services.events.waitingTimedOut(this, waiter.taskId, taskExecId)
          : this.services.events.waitingEnded(this, waiter.taskId, taskExecId, early.payload);
        return this.recorded(write).then(() => early);
      }
    }
    return new Promise((resolve, reject) => {
      this.waiters.set(taskExecId, {
        ...waiter,
        // The execution ended while this branch waited: the branch stops, it records nothing.
        resolve: (woken) => woken.reason === "ended" ? reject(new ExecutionEnded()) : resolve(woken),
      });
      this.scheduleParkCheck();
    });
  }

  /** Counts I/O in flight so the driver knows when it is only waiting. */
  async track<T>(promise: Promise<T>): Promise<T> {
    this.busy++;
    try {
      return await promise;
    } finally {
      this.busy--;
      if (this.busy === 0) this.scheduleParkCheck();
    }
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
    clearTimeout(this.deadlineTimer);
    for (const resolve of this.idleWaiters.splice(0)) resolve();
    if (result !== "parked") {
      for (const waiter of this.waiters.values()) waiter.resolve({ reason: "ended", payload: null });
      this.waiters.clear();
    }
    this.settle(result);
  }

  private assertRunning(): void {
    if (this.ended) throw new ExecutionEnded();
  }

  private async gate(): Promise<void> {
    this.assertRunning();
    while (this.paused && this.pauseGate) {
      await this.pauseGate;
      this.assertRunning();
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
    this.ended = true;
    this.result = { status: "FAILED", output: null, error: { message: failure.message, code: failure.code } };
    await this.recorded(this.services.events.workflowFailed(this, failure));
    this.finish("ended");
  }

  private async timeOutWorkflow(): Promise<void> {
    if (this.ended) return;
    this.ended = true;
    this.result = {
      status: "TIMED_OUT",
      output: null,
      error: { message: "timed out", code: "workflow_timeout" },
    };
    await this.recorded(this.services.events.workflowTimedOut(this));
    this.finish("ended");
  }

  /**
   * Arms the workflow's time-out: in memory while the driver runs, and, at the first start, as a durable
   * timer that wakes a parked execution when its time is up.
   */
  private armWorkflowTimeout(): void {
    const timeout = this.workflow.config.config?.timeout;
    if (!timeout || !this.replay.startedAt) return;
    const deadline = this.replay.startedAt.getTime() + parseDuration(timeout);
    this.deadlineTimer = setTimeout(
      () => this.timeOutWorkflow().catch(() => {}),
      Math.max(0, deadline - Date.now()),
    );
    if (this.replay.tasks.size === 0) {
      // Without its durable timer a parked execution would never time out: failing to store it gives up.
      this.recorded(
        this.services.timers.schedule(this, "(workflow)", this.execId, "workflow_timeout", deadline),
      )
        .catch(() => {});
    }
  }

  /** The template context of this execution, with the scope's own values. */
  context(scope: ScopeValues = {}): TemplateContext {
    const context: TemplateContext = {
      workflow: { id: this.workflow.id, exec_id: this.execId, input: this.replay.input },
      tasks: this.results,
      env: this.env(undefined, undefined, undefined),
    };
    for (const [k, v] of Object.entries(scope)) if (v !== undefined && k !== "parentExecId") context[k] = v;
    return context;
  }

  /** The env a task (and its tool or agent) sees; see mergeEnv for the precedence. */
  env(
    task: TaskConfig | undefined,
    own: Record<string, string> | undefined,
    base: TemplateContext | undefined,
  ): Record<string, string> {
    const workflowScope = {
      workflow: { id: this.workflow.id, exec_id: this.execId, input: this.replay.input },
    };
    this.baseEnv ??= mergeEnv(
      [this.project.envFile, this.services.processEnv, this.project.env, this.workflow.config.env],
      workflowScope,
    );
    if (!task?.env && !own) return this.baseEnv;
    return mergeEnv([task?.env, own], base ?? workflowScope, this.baseEnv);
  }
}

function recordedOutcome(record: RecordedTask | undefined): Outcome | undefined {
  if (!record) return undefined;
  if (record.status === "success" || record.status === "skipped") {
    return { ok: true, output: record.output ?? null, skipped: record.status === "skipped" };
  }
  if (record.status === "failed") {
    const e = record.error;
    return { ok: false, failure: new TaskFailure(e?.message ?? "failed", e?.code ?? "unknown", false) };
  }
  return undefined;
}

/** The route a router takes: its rendered condition as a string, and the task that names. */
function routeOf(
  task: Extract<TaskConfig, { type: "router" }>,
  context: TemplateContext,
  key: string,
): { name: string; route: string | TaskConfig | undefined } {
  const value = renderField(task.condition, context, key, "condition");
  const name = typeof value === "string" ? value : JSON.stringify(value);
  return { name, route: task.routes[name] ?? task.default };
}

/** Exponential back-off with full jitter, bounded by `max` (CONFIG.md retry.backoff). */
export function backoffDelay(task: TaskConfig, attempt: number): number {
  const backoff = task.retry?.backoff;
  const initial = backoff?.initial ? parseDuration(backoff.initial) : 1_000;
  const max = backoff?.max ? parseDuration(backoff.max) : 30_000;
  const factor = backoff?.factor ?? 2;
  const ceiling = Math.min(max, initial * factor ** (attempt - 1));
  // Half fixed, half random: spreads retries of many executions without ever retrying at once.
  return Math.round(ceiling / 2 + Math.random() * ceiling / 2);
}
