/**
 * `basic`: one tool call or agent action in the runtime, or a sub-workflow (started once per attempt, its end
 * waking the task).
 */
import { MAX_TIMER_MS } from "../../../long_timer.ts";
import { TaskFailure } from "../../../failure.ts";
import { ChildStartUnansweredError } from "../../../errors.ts";
import type { RecordedTask } from "../../../history/replay_state.ts";
import { parseDuration } from "../../duration.ts";
import { resolveUse, type Workflow } from "../../project/mod.ts";
import { toolTimeoutMs } from "../leaf_executor.ts";
import { renderField } from "../template_scope.ts";
import { remainingBudget } from "../workflow_budget.ts";
import type { TokenUsage } from "../../../../pkg/pb/mod.ts";
import { type DriverPort, ExecutionEnded, type Scope, type TaskOf, type TaskRunner } from "./types.ts";

/**
 * The longest time limit of one tool or agent call. The engine and the runtime time a call with setTimeout
 * (plus grace periods), which fires at once past 2^31-1 ms: a tool with `timeout: 30d` failed at once as
 * runtime_unavailable. An hour under that bound leaves room for the graces; no call comes near 24 days.
 */
const MAX_CALL_TIMEOUT_MS = MAX_TIMER_MS - 3_600_000;

/** An agent action's limit when its task sets no `timeout`. */
const DEFAULT_AGENT_TIMEOUT_MS = 300_000;

export const basicRunner: TaskRunner<TaskOf<"basic">> = {
  input: (task, context, key) => renderField(task.with ?? {}, context, key, "with"),
  // A call sent again after a crash, or a sub-workflow's replayed start, takes the `with` its attempt started
  // with: a new rendering (`now()`, a definition changed since) gave the tool another input.
  replaysInput: true,
  isCall: (driver, task) => resolveUse(driver.project, driver.workflow, task.use).kind !== "workflow",
  // A tool's or agent's call carries the time-out to the runtime; a sub-workflow is bounded by the driver.
  ownsTimeout: (driver, task) => basicRunner.isCall!(driver, task),
  // `input` is the task's `with`, rendered by `input` above (the driver records it with the attempt's start).
  async run({ driver, task, key, execId, attempt, scope, context, record, input }) {
    const resolved = resolveUse(driver.project, driver.workflow, task.use);
    if (resolved.kind === "workflow") {
      const output = await runChildWorkflow(
        driver,
        resolved.workflow,
        key,
        execId,
        attempt,
        input,
        scope,
        record,
      );
      return { ok: true, output };
    }
    const call = {
      correlationId: driver.correlationId,
      workflow: { id: driver.workflow.id, execId: driver.execId },
      task: { id: key, execId },
      attempt,
      timeoutMs: 0,
      // An ended or given-up driver stops its calls at once: a take-over (even by this engine) runs the next
      // attempt (outside review E1, E3).
      signal: scope.abort ? AbortSignal.any([scope.abort, driver.endSignal]) : driver.endSignal,
      // A call sent again (its runtime vanished, e.g. across a reconnect) goes out only from the lease's
      // holder, once this attempt's task.started is stored.
      beforeResend: () => driver.services.events.startedBeforeResend(driver, key, execId, attempt, input),
    };
    const taskTimeout = task.timeout ? parseDuration(task.timeout) : undefined;
    try {
      if (resolved.kind === "tool") {
        const tool = resolved.tool;
        call.timeoutMs = Math.min(toolTimeoutMs(tool), taskTimeout ?? Infinity, MAX_CALL_TIMEOUT_MS);
        const env = driver.env(task, tool.env, context, key);
        const result = await driver.track(driver.services.leaf.runTool(call, tool, input, env), scope.abort);
        return { ok: true, output: result.output };
      }
      call.timeoutMs = Math.min(taskTimeout ?? DEFAULT_AGENT_TIMEOUT_MS, MAX_CALL_TIMEOUT_MS);
      const env = driver.env(task, undefined, context, key);
      const request = driver.services.agents.prepare(driver, resolved.agent, task.action, input, {
        ...context,
        env,
      }, key);
      const budget = driver.workflow.config.config?.budget;
      if (budget) {
        const priced = Boolean((request.definition.model as { price?: unknown } | undefined)?.price);
        request.definition.workflowBudget = remainingBudget(
          budget,
          driver.usage.spentExcept(execId),
          priced,
          key,
        );
      }
      try {
        const result = await driver.track(driver.services.leaf.runAgent(call, request, env), scope.abort);
        driver.usage.report(execId, result.usage);
        return { ok: true, output: result.output, usage: result.usage };
      } catch (e) {
        // A failed loop was paid for too (leaf_executor.ts attaches its usage).
        driver.usage.report(execId, (e as { usage?: TokenUsage }).usage);
        throw e;
      }
    } finally {
      // Given up while the runtime still runs it (a decided race, a time-out): the runtime is told to stop.
      if (scope.abort?.aborted) driver.services.events.taskCanceled(driver, key, execId);
    }
  },
};

async function runChildWorkflow(
  driver: DriverPort,
  child: Workflow,
  key: string,
  execId: string,
  attempt: number,
  input: unknown,
  scope: Scope,
  record: RecordedTask | undefined,
): Promise<unknown> {
  let payload = record?.status === "woken" ? record.wakePayload : undefined;
  if (payload === undefined) {
    // Awaited even when the task is given up meanwhile: a start that returns then may have started the child.
    const childExecId = await driver.track(
      driver.services.children.start(driver, child, key, execId, attempt, input),
    ).catch(async (e) => {
      // A start with no answer may have started the child. Given up meanwhile (a time-out, a decided race, the
      // execution's end), the task is not started again by a replay, so nothing would cancel that child: it
      // ran on with no one waiting for it (outside review breaker3). It is looked up and canceled here.
      const givenUp = scope.abort?.aborted || (driver.isEnded && !driver.isAbandoned);
      if (e instanceof ChildStartUnansweredError && givenUp) {
        await driver.recorded(
          driver.services.children.cancelOfTask(driver, execId, "its task was given up"),
        );
      }
      throw e;
    });
    if (driver.isEnded) {
      // The execution ended (canceled, failed, timed out) while the child was being started: the child must
      // not outlive it. A driver that was only given up (its lease lost, its history unwritable) leaves the
      // child alone: the replay of the execution starts the same child again (idempotent) and waits for it.
      if (!driver.isAbandoned) await driver.cancelChildren([childExecId], "the parent ended");
      throw new ExecutionEnded();
    }
    if (scope.abort?.aborted) {
      // Given up while the start was in flight (a time-out, a decided race): the child must not outlive its task.
      await cancelGivenUp(driver, childExecId);
      throw scope.abort.reason;
    }
    driver.childStarted(childExecId);
    try {
      // Recorded as a wait, so a replay (after a pause, say) waits again rather than stopping at the gate.
      if (record?.status !== "waiting") {
        await driver.recorded(driver.services.events.waitingStarted(driver, key, execId, attempt, "", 0));
      }
      payload =
        (await driver.waitFor(execId, { kind: "child", taskId: key, attempt, childExecId, scope })).payload;
    } catch (e) {
      // Given up (a time-out, a decided race): the child must not outlive its task.
      if (scope.abort?.aborted) await cancelGivenUp(driver, childExecId);
      throw e;
    } finally {
      driver.childEnded(childExecId);
    }
  }
  const outcome = payload as { status: string; output: unknown; error?: { message: string; code: string } };
  if (outcome.status !== "SUCCESS") {
    // `retry` on a sub-workflow task asks for a new run of a child that failed or timed out; a canceled child
    // is not run again: someone stopped it on purpose, and a new child would undo that (outside review E6).
    throw new TaskFailure({
      message: `sub-workflow '${child.id}' ended ${outcome.status}: ${outcome.error?.message ?? ""}`.trim(),
      code: outcome.error?.code ?? "child_failed",
      retryable: outcome.status !== "CANCELED",
      details: { child_status: outcome.status },
    });
  }
  return outcome.output;
}

/**
 * Cancels the child of a given-up attempt. A cancel that cannot be sent gives the driver up (as at an
 * execution's end, D3): the attempt's failure is recorded only after this clean-up (ExecutionDriver.runTask),
 * so the replay finds the attempt open, times it out again and sends the cancel again (model finding G10: a
 * lost cancel left the child running for good, the task's retry recorded).
 */
export async function cancelGivenUp(driver: DriverPort, childExecId: string): Promise<void> {
  await driver.recorded(driver.services.children.cancel(driver, [childExecId], "its task was given up"));
}
