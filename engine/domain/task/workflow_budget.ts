/**
 * A workflow's `config.budget`: limits on what all the agent tasks of one execution spend together. The
 * engine keeps the usage each agent task reported (its latest: a re-run's usage includes the turns it
 * replayed), and gives each agent task, when it is dispatched, what is left; the runtime checks its loop
 * against that like the agent's own budget.
 *
 * Semantics, exactly: agent tasks that run at the same time (a parallel, a collection) are each given the
 * whole remainder at their start, so together they may pass the limit by what they spend concurrently. A
 * task dispatched when a limit is already reached fails `agent_budget_exceeded` without a model request.
 * `max_cost` limits tasks whose model has a `price`; a model without one spends tokens only.
 *
 * @module
 */
import type { TokenUsage } from "../../../pkg/pb/mod.ts";
import { TaskFailure } from "../../failure.ts";
import type { RecordedTask } from "../../history/replay_state.ts";
import type { BudgetConfig } from "../agent/schema.ts";

interface Spent {
  input: number;
  output: number;
  total: number;
  cost: number;
}

/** The usage of one execution's agent tasks, by task execution id. */
export class ExecutionUsage {
  readonly #byTask = new Map<string, TokenUsage>();

  /** Starts from the usage a replayed history recorded. */
  static fromReplay(tasks: Iterable<RecordedTask>): ExecutionUsage {
    const usage = new ExecutionUsage();
    for (const task of tasks) usage.report(task.execId, task.usage);
    return usage;
  }

  /** The latest usage of task `execId` (it replaces what that task reported before). */
  report(execId: string, usage: TokenUsage | undefined): void {
    if (usage) this.#byTask.set(execId, usage);
  }

  /** What every task but `execId` spent (a re-run of `execId` counts its own replayed turns again). */
  spentExcept(execId: string): Spent {
    const spent = { input: 0, output: 0, total: 0, cost: 0 };
    for (const [id, usage] of this.#byTask) {
      if (id === execId) continue;
      spent.input += Number(usage.inputTokens);
      spent.output += Number(usage.outputTokens);
      spent.total += Number(usage.totalTokens);
      spent.cost += usage.cost ?? 0;
    }
    return spent;
  }
}

/** An agent loop's limits on the wire (pkg/runtime/agent/agent_call.ts, AgentBudget). */
export type LoopBudget = Partial<Record<keyof BudgetConfig, number>>;

/**
 * What `budget` leaves for a task after `spent`; `priced` says whether the task's model has a price (else its
 * cost cannot be limited). Throws `agent_budget_exceeded` (not retryable) when a limit is already reached.
 *
 * @example
 * ```ts
 * import { remainingBudget } from "./workflow_budget.ts";
 * remainingBudget({ max_total_tokens: 1000 }, { input: 300, output: 100, total: 400, cost: 0 }, false, "t");
 * // { max_total_tokens: 600 }
 * ```
 */
export function remainingBudget(
  budget: BudgetConfig,
  spent: Spent,
  priced: boolean,
  taskId: string,
): LoopBudget {
  const left: LoopBudget = {};
  const limits = [
    ["max_input_tokens", spent.input],
    ["max_output_tokens", spent.output],
    ["max_total_tokens", spent.total],
    ["max_cost", spent.cost],
  ] as const;
  for (const [field, used] of limits) {
    const limit = budget[field];
    if (limit === undefined || (field === "max_cost" && !priced)) continue;
    const remaining = field === "max_cost" ? Math.round((limit - used) * 1e9) / 1e9 : limit - used;
    if (remaining <= 0) {
      throw new TaskFailure({
        message: `agent task '${taskId}' not started: the workflow's budget ${field} ${limit} is spent ` +
          `(the execution's agent tasks used ${used})`,
        code: "agent_budget_exceeded",
        retryable: false,
        details: { scope: "workflow", limit: field, max: limit, used },
      });
    }
    left[field] = remaining;
  }
  return left;
}
