/**
 * The reference interpreter: a pure, in-memory, single-threaded evaluator of a loaded workflow over scripted
 * tool results, signals and a virtual clock. It is written from docs/yaml-reference.md, CONFIG.md and
 * docs/engine.md (never from the engine's driver), so that the engine can be compared with it; where those
 * documents leave a choice open, the choice is named in a comment and in the model-test findings.
 *
 * Scope rule: each collection item, parallel branch and composite has its own scope of task results,
 * chained to its parent's; `.tasks.X` resolves in the innermost scope that has X.
 */
import { renderValue } from "../../../pkg/tplengine/mod.ts";
import {
  parseDuration,
  type Project,
  resolveUse,
  type Workflow,
} from "../../../engine/domain/project/mod.ts";
import type {
  BasicTask,
  CollectionTask,
  CompositeTask,
  ParallelTask,
  RouterTask,
  TaskConfig,
  WaitTask,
} from "../../../engine/domain/task/schema.ts";
import { childController, settle, Stopped, VirtualClock } from "./clock.ts";
import type {
  Action,
  BoundedAttempt,
  Checkpoint,
  ChildRecord,
  Decision,
  ParallelFailures,
  ReferenceResult,
  TaskOutcome,
  ToolCallRecord,
  ToolModel,
  WaitPlan,
} from "./types.ts";

/** A failure of one attempt or one task. */
class Failure {
  constructor(readonly code: string, readonly message: string, readonly retryable: boolean) {}
}

type Outcome =
  | { ok: true; output: unknown; skipped?: boolean; next?: string | TaskConfig }
  | { ok: false; failure: Failure };

/** Task results visible to templates, chained to the enclosing scope. */
class Scope {
  constructor(
    readonly parent: Scope | undefined,
    readonly vars: Record<string, unknown> = {},
    readonly results = new Map<string, { output: unknown; status: string }>(),
  ) {}

  child(vars: Record<string, unknown> = {}): Scope {
    return new Scope(this, vars);
  }

  /**
   * This scope with `vars` added (an `on_error` target's `.error`): the results written in it are this
   * scope's, so a container reached that way publishes its children where the tasks after it read them.
   */
  with(vars: Record<string, unknown>): Scope {
    return new Scope(this, vars, this.results);
  }

  /** `.tasks`: the innermost scope that has X wins. */
  tasks(): Record<string, unknown> {
    const tasks: Record<string, unknown> = {};
    for (const s of this.#chain()) for (const [id, r] of s.results) tasks[id] = r;
    return tasks;
  }

  variables(): Record<string, unknown> {
    return Object.assign({}, ...this.#chain().map((s) => s.vars));
  }

  /** Outermost first, so that inner scopes override. */
  #chain(): Scope[] {
    return this.parent ? [...this.parent.#chain(), this] : [this];
  }
}

interface Waiter {
  key: string;
  taskId: string;
  signal: string;
  condition?: string;
  scope: Scope;
  resolve(payload: unknown): void;
}

class Execution {
  readonly waiters = new Set<Waiter>();
  readonly tasks: Record<string, TaskOutcome> = {};
  paused = false;
  #gate?: { promise: Promise<void>; release(): void };

  constructor(
    readonly workflow: Workflow,
    readonly input: unknown,
    readonly execId: string,
    readonly controller: AbortController,
  ) {}

  pause(): void {
    if (this.paused) return;
    this.paused = true;
    let release!: () => void;
    const promise = new Promise<void>((r) => release = r);
    this.#gate = { promise, release };
  }

  resume(): void {
    this.paused = false;
    this.#gate?.release();
    this.#gate = undefined;
  }

  /** Pause holds back new tasks (docs/engine.md); running ones go on. */
  async admitted(): Promise<void> {
    while (this.#gate) await this.#gate.promise;
  }
}

export interface EvaluateOptions {
  tools: ToolModel;
  plan?: WaitPlan;
  /** Give up (status STUCK) past this much virtual time. */
  horizonMs?: number;
}

/** Evaluates one execution of `workflowId` with `input`. */
export async function evaluate(
  project: Project,
  workflowId: string,
  input: unknown,
  options: EvaluateOptions,
): Promise<ReferenceResult> {
  const interpreter = new Interpreter(project, options);
  return await interpreter.run(workflowId, input);
}

class Interpreter {
  readonly clock = new VirtualClock();
  readonly calls: ToolCallRecord[] = [];
  readonly checkpoints: Checkpoint[] = [];
  readonly executions: Execution[] = [];
  readonly fired = new Set<string>();
  /** The ids of the signal messages that arrived (Action.id). */
  readonly #messages = new Set<string>();
  readonly waitStarts: Record<string, number> = {};
  readonly bounds: BoundedAttempt[] = [];
  readonly decisions: Decision[] = [];
  readonly parallelFailures: ParallelFailures[] = [];
  readonly children: ChildRecord[] = [];
  /** The task key of each call of the root, to mark those whose task never ended. */
  readonly #callTasks = new Map<ToolCallRecord, string>();
  /** Each broadcast of a checkpoint and the root's waits that listened for it (see Checkpoint.reaches). */
  readonly #broadcasts: Array<{ reaches: boolean[]; index: number; listening: string[] }> = [];
  /** Task keys of the root's waits that ended by their time-out. */
  readonly #timedOutWaits = new Set<string>();
  #nextExec = 0;

  constructor(readonly project: Project, readonly options: EvaluateOptions) {}

  async run(workflowId: string, input: unknown): Promise<ReferenceResult> {
    const root = this.#startExecution(workflowId, input, new AbortController());
    let result: ExecutionResult | undefined;
    root.done.then((r) => result = r);
    const horizon = this.options.horizonMs ?? 3_600_000;
    while (!result) {
      await settle();
      if (result) break;
      if (this.#fireCheckpoint(root.execution)) continue;
      if (this.clock.now > horizon || !this.clock.advance()) break;
    }
    // The children canceled by the root's end settle their own ends.
    await settle();
    for (const [call, key] of this.#callTasks) if (!root.execution.tasks[key]) call.canceled = key;
    for (const { reaches, index, listening } of this.#broadcasts) {
      reaches[index] = listening.some((key) => !this.#timedOutWaits.has(key));
    }
    return {
      status: result?.status ?? "STUCK",
      output: result?.output ?? null,
      error: result?.error ?? null,
      tasks: root.execution.tasks,
      calls: this.calls,
      checkpoints: this.checkpoints,
      waitStarts: this.waitStarts,
      bounds: this.bounds,
      decisions: this.decisions,
      parallelFailures: this.parallelFailures,
      children: this.children,
      elapsedMs: this.clock.now,
    };
  }

  /** At quiescence: the waits of the root that just started waiting and have planned actions act now. */
  #fireCheckpoint(root: Execution): boolean {
    const plan = this.options.plan ?? {};
    const due = [...root.waiters].filter((w) => plan[w.taskId] && !this.fired.has(w.key));
    if (due.length === 0) return false;
    const actions: Action[] = [];
    // Each waiting instance (collection items) gets its wait's actions: whether one signal ends every wait
    // for its id or only one of them is not settled by the docs, and one signal per instance ends them all
    // under both readings.
    for (const w of due) {
      this.fired.add(w.key);
      actions.push(...plan[w.taskId]);
    }
    const signals = new Set(actions.flatMap((a) => a.kind === "signal" ? [a.signal] : []));
    const waiting = [...root.waiters].filter((w) => due.includes(w) || signals.has(w.signal)).map((w) =>
      w.key
    );
    const reaches = actions.map(() => false);
    this.checkpoints.push({ waiting: [...new Set(waiting)].sort(), actions, reaches });
    for (const [index, action] of actions.entries()) {
      if (action.kind === "signal" && action.broadcast) {
        const listening = [...root.waiters].filter((w) => w.signal === action.signal).map((w) => w.key);
        this.#broadcasts.push({ reaches, index, listening });
      }
      this.#act(root, action);
    }
    return true;
  }

  #act(root: Execution, action: Action): void {
    switch (action.kind) {
      case "pause":
        return root.pause();
      case "resume":
        return root.resume();
      case "cancel":
        return root.controller.abort(new Stopped("canceled"));
      case "signal":
        // A message's fate is fixed at its first arrival (docs/engine.md): a copy of it ends nothing, also
        // not a wait that started since.
        if (action.id !== undefined) {
          if (this.#messages.has(action.id)) return;
          this.#messages.add(action.id);
        }
        if (action.broadcast) this.#broadcast(action.signal, action.payload);
        else this.#deliver(root, action.signal, action.payload);
    }
  }

  /** Offers a signal to each wait of the execution; every wait for that id whose condition accepts it ends. */
  #deliver(execution: Execution, signal: string, payload: unknown): boolean {
    let had = false;
    for (const waiter of [...execution.waiters]) {
      if (waiter.signal !== signal) continue;
      had = true;
      if (!this.#accepts(execution, waiter, payload)) continue;
      execution.waiters.delete(waiter);
      waiter.resolve(payload);
    }
    return had;
  }

  /** Returns how many executions had a wait for the signal. */
  #broadcast(signal: string, payload: unknown): number {
    let delivered = 0;
    for (const execution of this.executions) {
      if (execution.controller.signal.aborted) continue;
      if (this.#deliver(execution, signal, payload)) delivered++;
    }
    return delivered;
  }

  /** A condition that cannot be evaluated is a non-match (issue 9, "Bad input"). */
  #accepts(execution: Execution, waiter: Waiter, payload: unknown): boolean {
    if (waiter.condition === undefined) return true;
    try {
      const value = renderValue(waiter.condition, {
        ...this.#context(execution, waiter.scope),
        signal: { payload },
      });
      return value === true || value === "true";
    } catch {
      return false;
    }
  }

  #startExecution(workflowId: string, input: unknown, controller: AbortController) {
    const workflow = this.project.workflows.get(workflowId);
    if (!workflow) throw new RangeError(`unknown workflow ${workflowId}`);
    const execution = new Execution(workflow, input, `ref-exec-${this.#nextExec++}`, controller);
    this.executions.push(execution);
    return { execution, done: this.#runWorkflow(execution) };
  }

  async #runWorkflow(execution: Execution): Promise<ExecutionResult> {
    const { workflow, controller } = execution;
    const timeout = workflow.config.config?.timeout;
    const timer = new AbortController();
    // Its own time-out only: a parent's time-out reaches a child as a cancel (docs/engine.md, sub-workflows).
    const timedOut = new Stopped("workflow_timeout");
    if (timeout) {
      this.clock.sleep(parseDuration(timeout), timer.signal).then(() => controller.abort(timedOut), () => {});
    }
    const root = new Scope(undefined);
    try {
      const result = await this.#flow(execution, root);
      return result;
    } catch (e) {
      if (!(e instanceof Stopped)) throw e;
      if (e === timedOut) return { status: "TIMED_OUT", output: null, error: { code: "workflow_timeout" } };
      return { status: "CANCELED", output: null, error: { code: "canceled" } };
    } finally {
      timer.abort(new Stopped("ended"));
      execution.waiters.clear();
      // docs/engine.md: a parent that ends (any way) while a child runs cancels it; on SUCCESS none runs.
      if (!controller.signal.aborted) controller.abort(new Stopped("the parent ended"));
    }
  }

  /** CONFIG.md "Control flow" over the workflow's task list. */
  async #flow(execution: Execution, root: Scope): Promise<ExecutionResult> {
    const list = execution.workflow.config.tasks;
    let current: TaskConfig | undefined = list[0];
    let vars: Record<string, unknown> = {};
    let last: unknown = null;
    while (current) {
      const task: TaskConfig = current;
      const outcome = await this.#runTask(execution, task, task.id, root, execution.controller.signal, vars);
      vars = {};
      const index = list.indexOf(task);
      // An inline route task has no list position: without final/on_success the workflow ends after it.
      const following = index >= 0 ? list[index + 1] : undefined;
      if (outcome.ok) {
        last = outcome.output;
        if (task.final) break;
        const next: string | TaskConfig | undefined = outcome.next ?? task.on_success?.next;
        current = next === undefined ? following : this.#resolveTask(execution, next);
        continue;
      }
      const failure = outcome.failure;
      if (task.type === "wait" && task.on_timeout && failure.code === "wait_timeout") {
        // Decided (docs/yaml-reference.md, seed 30350): the `on_timeout` target reads `.error` (code
        // `wait_timeout`) as an `on_error` target does.
        vars = { error: { message: failure.message, code: failure.code } };
        current = this.#resolveTask(execution, task.on_timeout);
      } else if (task.on_error) {
        vars = { error: { message: failure.message, code: failure.code } };
        current = this.#resolveTask(execution, task.on_error.next);
      } else {
        return { status: "FAILED", output: null, error: { code: failure.code } };
      }
    }
    const outputs = execution.workflow.config.outputs;
    if (outputs === undefined) return { status: "SUCCESS", output: last, error: null };
    try {
      return { status: "SUCCESS", output: renderValue(outputs, this.#context(execution, root)), error: null };
    } catch {
      return { status: "FAILED", output: null, error: { code: "template_error" } };
    }
  }

  #resolveTask(execution: Execution, next: string | TaskConfig): TaskConfig {
    if (typeof next !== "string") return next;
    const task = execution.workflow.tasks.get(next);
    if (!task) throw new RangeError(`unknown task ${next}`);
    return task;
  }

  #context(execution: Execution, scope: Scope): Record<string, unknown> {
    return {
      workflow: { input: execution.input, id: execution.workflow.id, exec_id: execution.execId },
      env: { ...this.project.env, ...execution.workflow.config.env },
      ...scope.variables(),
      tasks: scope.tasks(),
    };
  }

  /** One task with its `if`, attempts, `timeout` and `outputs`; recorded by key, visible in `scope`. */
  async #runTask(
    execution: Execution,
    task: TaskConfig,
    key: string,
    scope: Scope,
    signal: AbortSignal,
    vars: Record<string, unknown> = {},
  ): Promise<Outcome> {
    await execution.admitted();
    if (signal.aborted) throw signal.reason;
    try {
      return await this.#runStarted(execution, task, key, scope, signal, vars);
    } catch (e) {
      // docs/yaml-reference.md, "What `.tasks` sees": a task given up while it ran (a decided race's or
      // fail_fast's other branch, what a timed-out container ran) reads CANCELED to the tasks after it.
      if (e instanceof Stopped) scope.results.set(task.id, { output: null, status: "CANCELED" });
      throw e;
    }
  }

  /** #runTask once the task is dispatched (admitted, its branch not given up). */
  async #runStarted(
    execution: Execution,
    task: TaskConfig,
    key: string,
    scope: Scope,
    signal: AbortSignal,
    vars: Record<string, unknown>,
  ): Promise<Outcome> {
    const taskScope = Object.keys(vars).length ? scope.with(vars) : scope;
    const ctx = () => this.#context(execution, taskScope);
    if (task.if !== undefined) {
      let run: unknown;
      try {
        run = renderValue(task.if, ctx());
      } catch (e) {
        return this.#record(execution, key, task, scope, failed("template_error", e));
      }
      // docs/templates.md: `if` must render true or false (or "true"/"false"); anything else is a template error.
      if (run !== true && run !== "true" && run !== false && run !== "false") {
        const message = `task '${key}', field 'if': must render true or false, got ${JSON.stringify(run)}`;
        return this.#record(execution, key, task, scope, failed("template_error", message));
      }
      if (run === false || run === "false") {
        execution.tasks[key] = { status: "SKIPPED", output: null };
        scope.results.set(task.id, { output: null, status: "SKIPPED" });
        return { ok: true, output: null, skipped: true };
      }
    }
    const attempts = task.retry?.max_attempts ?? 1;
    let outcome: Outcome = failed("unknown", "no attempt");
    for (let attempt = 1; attempt <= attempts; attempt++) {
      outcome = await this.#attempt(execution, task, key, taskScope, signal, attempt);
      if (outcome.ok || !outcome.failure.retryable || attempt === attempts) break;
      await this.clock.sleep(backoffMs(task, attempt), signal);
      await execution.admitted();
    }
    if (outcome.ok && task.outputs && task.type !== "aggregate") {
      try {
        const ownScope = this.#ownScopes.get(key) ?? taskScope;
        const output = renderValue(task.outputs, {
          ...this.#context(execution, ownScope),
          output: outcome.output,
        });
        outcome = { ...outcome, output };
      } catch (e) {
        outcome = failed("template_error", e);
      }
    }
    return this.#record(execution, key, task, scope, outcome);
  }

  /** The scope a container's children wrote to, so that its `outputs` can read them. */
  readonly #ownScopes = new Map<string, Scope>();

  #record(execution: Execution, key: string, task: TaskConfig, scope: Scope, outcome: Outcome): Outcome {
    if (outcome.ok) {
      execution.tasks[key] = { status: "SUCCESS", output: outcome.output };
      scope.results.set(task.id, { output: outcome.output, status: "SUCCESS" });
    } else {
      execution.tasks[key] = { status: "FAILED", output: null, code: outcome.failure.code };
      scope.results.set(task.id, { output: null, status: "FAILED" });
    }
    return outcome;
  }

  /** One attempt, bounded by the task's `timeout` (a wait's is how long it waits; a tool's is min'd in). */
  async #attempt(
    execution: Execution,
    task: TaskConfig,
    key: string,
    scope: Scope,
    signal: AbortSignal,
    attempt: number,
  ): Promise<Outcome> {
    const bounded = task.timeout !== undefined && task.type !== "wait" &&
      !(task.type === "basic" && task.use.startsWith("tool("));
    if (!bounded) return await this.#body(execution, task, key, scope, signal, attempt);
    const limit = childController(signal);
    const timer = new AbortController();
    const limitMs = parseDuration(task.timeout!);
    const started = this.clock.now;
    const bound = () => ({ key, limitMs, tookMs: this.clock.now - started });
    const expired = this.clock.sleep(limitMs, timer.signal).then(() => {
      limit.abort(new Stopped("task_timeout"));
    }, () => {});
    try {
      const outcome = await this.#body(execution, task, key, scope, limit.signal, attempt);
      this.bounds.push({ ...bound(), timedOut: false });
      return outcome;
    } catch (e) {
      // Decision: a time-out of a task that is not a tool call nor a wait fails it with `task_timeout`,
      // retryable like every time-out (docs/engine.md).
      if (e instanceof Stopped && e.reason === "task_timeout" && !signal.aborted) {
        this.bounds.push({ ...bound(), timedOut: true });
        return failed("task_timeout", `task '${key}' timed out`, true);
      }
      throw e;
    } finally {
      timer.abort(new Stopped("ended"));
      await expired;
    }
  }

  async #body(
    execution: Execution,
    task: TaskConfig,
    key: string,
    scope: Scope,
    signal: AbortSignal,
    attempt: number,
  ): Promise<Outcome> {
    const ctx = () => this.#context(execution, scope);
    const render = (value: unknown): unknown => renderValue(value, ctx());
    // docs/engine.md: a retried container runs its children again under `<task>#<attempt>/…`.
    const prefix = attempt > 1 ? `${key}#${attempt}` : key;
    try {
      switch (task.type) {
        case "basic":
          return await this.#basic(execution, task, key, render, signal, attempt);
        case "router":
          return this.#router(task, render);
        case "parallel":
          return await this.#parallel(execution, task, key, prefix, scope, signal);
        case "collection":
          return await this.#collection(execution, task, prefix, scope, signal, render);
        case "composite":
          return await this.#composite(execution, task, key, prefix, scope, signal);
        case "aggregate":
          return { ok: true, output: render(task.outputs) };
        case "wait":
          return await this.#wait(execution, task, key, scope, signal);
        case "signal": {
          const payload = render(task.signal.payload ?? null);
          // Decision (not in the docs; the engine's tests show it): the output is { signal, delivered }.
          if (task.target !== undefined) {
            const target = this.executions.find((e) => e.execId === render(task.target));
            const delivered = target && this.#deliver(target, task.signal.id, payload) ? 1 : 0;
            return { ok: true, output: { signal: task.signal.id, delivered } };
          }
          const delivered = this.#broadcast(task.signal.id, payload);
          return { ok: true, output: { signal: task.signal.id, delivered } };
        }
        case "sleep":
          await this.clock.sleep(parseDuration(task.duration), signal);
          return { ok: true, output: null };
      }
    } catch (e) {
      if (e instanceof Stopped) throw e;
      return failed("template_error", e);
    }
  }

  async #basic(
    execution: Execution,
    task: BasicTask,
    key: string,
    render: (v: unknown) => unknown,
    signal: AbortSignal,
    attempt: number,
  ): Promise<Outcome> {
    const used = resolveUse(this.project, execution.workflow, task.use);
    const input = render(task.with ?? {});
    if (used.kind === "workflow") {
      // A given-up attempt (time-out, decided race, fail_fast) or an ended parent aborts `signal`: the
      // child is canceled (its own record says so once it has ended).
      const child = this.#startExecution(used.workflow.id, input, childController(signal));
      if (execution === this.executions[0]) {
        const record: ChildRecord = { key, workflow: used.workflow.id, status: "RUNNING" };
        this.children.push(record);
        child.done.then((r) => record.status = r.status);
      }
      const result = await stoppable(child.done, signal);
      if (result.status === "SUCCESS") return { ok: true, output: result.output };
      // Decision: a failed child fails the task with the child's error code; retryable (issue 9, defect 5).
      return failed(result.error?.code ?? "child_failed", `sub-workflow ${result.status}`, true);
    }
    if (used.kind !== "tool") throw new RangeError("the reference interpreter runs no agents");
    const call: ToolCallRecord = { tool: used.tool.id, input, attempt };
    this.calls.push(call);
    if (execution === this.executions[0]) this.#callTasks.set(call, key);
    const behaviour = this.options.tools(used.tool.id, input, attempt);
    const limit = Math.min(
      parseDuration(used.tool.timeout ?? "60s"),
      task.timeout ? parseDuration(task.timeout) : Infinity,
    );
    if (behaviour.ms >= limit) {
      await this.clock.sleep(limit, signal);
      return failed("tool_timeout", `tool '${used.tool.id}' timed out`, true);
    }
    await this.clock.sleep(behaviour.ms, signal);
    if (behaviour.ok) return { ok: true, output: behaviour.output };
    return failed(behaviour.code, `tool '${used.tool.id}' failed`, behaviour.retryable);
  }

  #router(task: RouterTask, render: (v: unknown) => unknown): Outcome {
    const value = typeof task.condition === "string" ? render(task.condition) : task.condition;
    const name = typeof value === "string" ? value : JSON.stringify(value);
    const next = Object.hasOwn(task.routes, name) ? task.routes[name] : task.default;
    if (next === undefined) return failed("no_route", `no route for '${name}'`, false);
    return { ok: true, output: { route: value }, next };
  }

  async #composite(
    execution: Execution,
    task: CompositeTask,
    key: string,
    prefix: string,
    scope: Scope,
    signal: AbortSignal,
  ): Promise<Outcome> {
    const own = scope.child();
    this.#ownScopes.set(key, own);
    let output: unknown = null;
    try {
      for (const child of task.tasks) {
        const outcome = await this.#runTask(execution, child, `${prefix}/${child.id}`, own, signal);
        if (!outcome.ok) return childFailed(outcome.failure);
        output = outcome.output;
      }
      return { ok: true, output };
    } finally {
      publish(own, scope);
    }
  }

  async #parallel(
    execution: Execution,
    task: ParallelTask,
    key: string,
    prefix: string,
    scope: Scope,
    signal: AbortSignal,
  ): Promise<Outcome> {
    const strategy = task.strategy ?? "wait_all";
    const stop = childController(signal);
    const merged = scope.child();
    this.#ownScopes.set(key, merged);
    const outputs: Record<string, unknown> = {};
    const errors: Record<string, { code: string; message: string }> = {};
    const failures: ParallelFailures["failures"] = [];
    let firstFailure: Failure | undefined;
    let winner: string | undefined;
    let ended = 0;
    const decide = (branch: string) => {
      const stopped = task.tasks.length - ended;
      this.decisions.push({ key, branch, atMs: this.clock.now, stopped });
      stop.abort(new Stopped(`${strategy} decided`));
    };
    try {
      await limited(task.tasks, task.max_workers ?? task.tasks.length, async (child) => {
        if (stop.signal.aborted) return;
        const branch = scope.child();
        let outcome: Outcome;
        try {
          outcome = await this.#runTask(execution, child, `${prefix}/${child.id}`, branch, stop.signal);
        } catch (e) {
          if (e instanceof Stopped && !signal.aborted) return;
          throw e;
        } finally {
          // A given-up branch's tasks read CANCELED after the parallel, as the ended ones read their outcome.
          for (const [id, r] of branch.results) merged.results.set(id, r);
        }
        ended++;
        if (outcome.ok) {
          outputs[child.id] = outcome.output;
          if (strategy === "race" && winner === undefined) {
            winner = child.id;
            decide(child.id);
          }
        } else {
          errors[child.id] = { code: outcome.failure.code, message: outcome.failure.message };
          failures.push({ branch: child.id, code: outcome.failure.code, atMs: this.clock.now });
          firstFailure ??= outcome.failure;
          if (strategy === "fail_fast" && !stop.signal.aborted) decide(child.id);
        }
      });
    } finally {
      publish(merged, scope);
    }
    if (signal.aborted) throw signal.reason;
    const failedWithFirst = (strategy === "race" && winner === undefined) ||
      (strategy === "wait_all" && firstFailure);
    if (failedWithFirst && failures.length > 1) this.parallelFailures.push({ key, failures });
    if (strategy === "race") {
      if (winner === undefined) return childFailed(firstFailure ?? new Failure("parallel_failed", "", false));
      return { ok: true, output: { [winner]: outputs[winner] } };
    }
    if (strategy === "best_effort") {
      // Decision: `errors` appears only when a child failed.
      return { ok: true, output: Object.keys(errors).length ? { ...outputs, errors } : outputs };
    }
    if (firstFailure) return childFailed(firstFailure);
    return { ok: true, output: outputs };
  }

  async #collection(
    execution: Execution,
    task: CollectionTask,
    prefix: string,
    scope: Scope,
    signal: AbortSignal,
    render: (v: unknown) => unknown,
  ): Promise<Outcome> {
    const items = render(task.items);
    if (!Array.isArray(items)) return failed("items_not_list", "items is not a list", false);
    const selected: number[] = [];
    for (let index = 0; index < items.length; index++) {
      if (task.filter === undefined) {
        selected.push(index);
        continue;
      }
      const keep = renderValue(task.filter, {
        ...this.#context(execution, scope),
        item: items[index],
        index,
      });
      if (keep === true || keep === "true") selected.push(index);
      // docs/yaml-reference.md: `filter` is strict like `if`; anything but true/false fails the collection.
      else if (keep !== false && keep !== "false") {
        const message = `task '${prefix}', field 'filter': must render true or false, got ${
          JSON.stringify(keep)
        }`;
        return failed("template_error", `${message} (item ${index})`);
      }
    }
    // Decision: `.index` is the item's position in `items` (before filtering), as is its key.
    const outputs: unknown[] = new Array(selected.length).fill(null);
    // Decision (the engine's, docs/yaml-reference.md): at most 10 items at once unless `max_workers` says.
    const workers = task.mode === "sequential" ? 1 : (task.max_workers ?? 10);
    const batch = task.batch ?? Math.max(1, selected.length);
    let firstFailure: Failure | undefined;
    for (let start = 0; start < selected.length && !firstFailure; start += batch) {
      const slice = selected.slice(start, start + batch).map((index, i) => ({ index, slot: start + i }));
      await limited(slice, workers, async ({ index, slot }) => {
        // docs/yaml-reference.md: once an item failed no item starts; the items already running end first.
        if (firstFailure) return;
        const itemScope = scope.child({ item: items[index], index });
        const outcome = await this.#runTask(execution, task.task, `${prefix}[${index}]`, itemScope, signal);
        if (outcome.ok) outputs[slot] = outcome.output;
        else firstFailure ??= outcome.failure;
      });
    }
    if (firstFailure) return childFailed(firstFailure);
    return { ok: true, output: outputs };
  }

  async #wait(
    execution: Execution,
    task: WaitTask,
    key: string,
    scope: Scope,
    signal: AbortSignal,
  ): Promise<Outcome> {
    const timer = new AbortController();
    try {
      const payload = await new Promise<unknown>((resolve, reject) => {
        const waiter: Waiter = {
          key,
          taskId: task.id,
          signal: task.signal,
          condition: task.condition,
          scope,
          resolve,
        };
        if (execution === this.executions[0]) this.waitStarts[key] ??= this.clock.now;
        execution.waiters.add(waiter);
        const onAbort = () => {
          execution.waiters.delete(waiter);
          reject(signal.reason);
        };
        signal.addEventListener("abort", onAbort, { once: true });
        if (task.timeout) {
          this.clock.sleep(parseDuration(task.timeout), timer.signal).then(() => {
            execution.waiters.delete(waiter);
            if (execution === this.executions[0]) this.#timedOutWaits.add(key);
            // Retryable like every time-out: `retry` on a wait waits again (docs/engine.md).
            reject(new Failure("wait_timeout", `wait '${key}' timed out`, true));
          }, () => {});
        }
      });
      return { ok: true, output: payload };
    } catch (e) {
      if (e instanceof Failure) return { ok: false, failure: e };
      throw e;
    } finally {
      timer.abort(new Stopped("ended"));
    }
  }
}

interface ExecutionResult {
  status: "SUCCESS" | "FAILED" | "TIMED_OUT" | "CANCELED";
  output: unknown;
  error: { code: string } | null;
}

function failed(code: string, cause: unknown, retryable = false): { ok: false; failure: Failure } {
  const message = cause instanceof Error ? cause.message : String(cause);
  return { ok: false, failure: new Failure(code, message, retryable) };
}

/** A container fails with its child's code; retryable, so `retry` on a container retries it (defect 5). */
function childFailed(failure: Failure): Outcome {
  return { ok: false, failure: new Failure(failure.code, failure.message, true) };
}

/** docs/engine.md: the delay before attempt n+1 is at most min(max, initial × factor^(n-1)). */
function backoffMs(task: TaskConfig, attempt: number): number {
  const backoff = task.retry?.backoff;
  const initial = parseDuration(backoff?.initial ?? "1s");
  const max = parseDuration(backoff?.max ?? "30s");
  return Math.min(max, initial * (backoff?.factor ?? 2) ** (attempt - 1));
}

/** Runs `fn` over `items`, at most `limit` at once, in list order. */
async function limited<T>(items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const errors: unknown[] = [];
  const worker = async () => {
    while (next < items.length) {
      const item = items[next++];
      try {
        await fn(item);
      } catch (e) {
        errors.push(e);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
  if (errors.length) throw errors[0];
}

/**
 * docs/yaml-reference.md: when a composite or a parallel ends (whatever its outcome), its children's results
 * become visible to the tasks after it, and to the workflow's `outputs`; a collection's items never do.
 */
function publish(inner: Scope, outer: Scope): void {
  for (const [id, r] of inner.results) outer.results.set(id, r);
}

/** Awaits `promise` unless `signal` aborts first. */
function stoppable<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then((v) => {
      signal.removeEventListener("abort", onAbort);
      resolve(v);
    }, reject);
  });
}
