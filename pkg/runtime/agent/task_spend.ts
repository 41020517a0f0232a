/**
 * What an agent task spends once its loop has ended: its memory's summary requests are model requests of the
 * task, so they count toward its budgets (the agent's `budget` and what the workflow's left it) as its replies
 * do (budget.ts).
 *
 * Semantics, exactly:
 * - Before a summary is asked for, {@link TaskSpend.affords} checks that the budgets still cover the
 *   request's estimate (its prompt at 4 characters a token, its `max_tokens` of output, their cost at the
 *   summarizer's price). When they do not, the summary is not asked for: the messages leaving the window are
 *   forgotten, as when a summary request fails, and the task's answer stands.
 * - Its actual usage is then charged ({@link TaskSpend.charge}): when it crosses a limit anyway (the estimate
 *   was low), the task fails `agent_budget_exceeded` like a reply that crosses one, with the usage so far, and
 *   its memory is not written.
 * - A summarizer model without a `price` adds tokens, no cost.
 *
 * @module
 */

import type { AgentBudget, TokenUsage } from "./agent_call.ts";
import { checkBudget, exceededLimit } from "./budget.ts";
import { sumUsage } from "./token_usage.ts";

export interface TaskBudgets {
  budget?: AgentBudget;
  workflowBudget?: AgentBudget;
}

export class TaskSpend {
  #usage: TokenUsage;

  /** `usage` is what the task's loop spent. */
  constructor(usage: TokenUsage, private readonly budgets: TaskBudgets, private readonly label: string) {
    this.#usage = usage;
  }

  /** Everything the task has spent: its loop and every request charged since. */
  get usage(): TokenUsage {
    return this.#usage;
  }

  /** Whether a request that may spend `estimate` keeps the task within its budgets. */
  affords(estimate: TokenUsage): boolean {
    const after = sumUsage(this.#usage, estimate);
    return !exceededLimit(this.budgets.budget, after) && !exceededLimit(this.budgets.workflowBudget, after);
  }

  /**
   * Adds what a request spent.
   *
   * @throws {AgentFailure} `agent_budget_exceeded` when the task is now over a limit.
   */
  charge(usage: TokenUsage): void {
    this.#usage = sumUsage(this.#usage, usage);
    this.check(this.#usage);
  }

  private check(usage: TokenUsage): void {
    checkBudget(this.budgets.budget, usage, this.label, "agent");
    checkBudget(this.budgets.workflowBudget, usage, this.label, "workflow");
  }
}
