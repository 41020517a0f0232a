/**
 * An agent task's budget: limits on tokens and cost over every model request of the task (replayed turns
 * included, so a re-run after a crash spends from the same budget), checked after each reply.
 *
 * Semantics, exactly: the reply that crosses a limit was already paid for; it is recorded and counted in the
 * usage, then the call ends with `agent_budget_exceeded` (not retryable) before any tool it asked for runs.
 * A limit equal to the usage is not exceeded.
 *
 * @module
 */

import type { AgentBudget, ModelPrice, TokenUsage } from "./agent_call.ts";
import { AgentFailure, configInvalid } from "./agent_failure.ts";

const LIMITS = [
  ["max_input_tokens", "inputTokens", "input tokens"],
  ["max_output_tokens", "outputTokens", "output tokens"],
  ["max_total_tokens", "totalTokens", "total tokens"],
  ["max_cost", "cost", "cost"],
] as const;

/** Refuses a budget that can never be checked: `max_cost` on a model without a `price`. */
export function checkBudgetConfig(
  budget: AgentBudget | undefined,
  price: ModelPrice | undefined,
  label: string,
) {
  if (budget?.max_cost !== undefined && !price) {
    throw configInvalid(
      `${label}: 'budget.max_cost' needs the model's 'price' (input_per_million, output_per_million)`,
      { field: "budget.max_cost" },
    );
  }
}

/** The first limit of `budget` that `usage` is over, if any. */
export function exceededLimit(
  budget: AgentBudget | undefined,
  usage: TokenUsage,
): { field: keyof AgentBudget; limit: number; used: number; what: string } | undefined {
  if (!budget) return undefined;
  for (const [field, key, what] of LIMITS) {
    const limit = budget[field];
    const used = usage[key];
    if (limit !== undefined && used !== undefined && used > limit) return { field, limit, used, what };
  }
  return undefined;
}

/**
 * Throws `agent_budget_exceeded` when `usage` is over a limit of `budget`: the agent's own (`scope: "agent"`),
 * or what the workflow's budget left for this task when it started (`scope: "workflow"`).
 */
export function checkBudget(
  budget: AgentBudget | undefined,
  usage: TokenUsage,
  label: string,
  scope: "agent" | "workflow" = "agent",
): void {
  const exceeded = exceededLimit(budget, usage);
  if (!exceeded) return;
  const { field, limit, used, what } = exceeded;
  const whose = scope === "agent"
    ? `the agent's budget allows ${field} ${limit}`
    : `the workflow's budget left ` +
      `this task ${field} ${limit}`;
  throw new AgentFailure(
    "agent_budget_exceeded",
    `${label}: ${whose}, and the task has used ${used} ${what}`,
    { retryable: false, details: { scope, limit: field, max: limit, used, usage } },
  );
}

/**
 * The cost of `usage` at `price` (per million tokens), rounded to 1e-9 so sums do not show float noise.
 *
 * @example
 * ```ts
 * import { costOf } from "./budget.ts";
 * costOf({ inputTokens: 1000, outputTokens: 500, totalTokens: 1500 }, { input_per_million: 0.15, output_per_million: 0.6 });
 * // 0.00045
 * ```
 */
export function costOf(usage: TokenUsage, price: ModelPrice): number {
  const cost = (usage.inputTokens * price.input_per_million + usage.outputTokens * price.output_per_million) /
    1_000_000;
  return Math.round(cost * 1e9) / 1e9;
}
