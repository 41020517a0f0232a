/**
 * Token usage summed over every model request of one call.
 *
 * @module
 */

import type { LanguageModelUsage } from "ai";
import type { ModelPrice, TokenUsage } from "./agent_call.ts";
import { costOf } from "./budget.ts";

/** One request's usage from the AI SDK's, where a provider may omit any count. */
export function tokenUsage(usage: LanguageModelUsage): TokenUsage {
  const inputTokens = usage.inputTokens ?? 0;
  const outputTokens = usage.outputTokens ?? 0;
  // Some providers count more than input + output in the total (reasoning, cache); trust theirs when given.
  return { inputTokens, outputTokens, totalTokens: usage.totalTokens ?? inputTokens + outputTokens };
}

/** A running total of requests' usage; with a price, the total carries its cost. */
export class UsageMeter {
  #input = 0;
  #output = 0;
  #total = 0;
  readonly #price?: ModelPrice;

  constructor(price?: ModelPrice) {
    this.#price = price;
  }

  add(usage: TokenUsage): void {
    this.#input += usage.inputTokens;
    this.#output += usage.outputTokens;
    this.#total += usage.totalTokens;
  }

  get total(): TokenUsage {
    const total = { inputTokens: this.#input, outputTokens: this.#output, totalTokens: this.#total };
    return this.#price ? { ...total, cost: costOf(total, this.#price) } : total;
  }
}

/** Two usages together (a loop's and its memory summary's, priced by different models); cost when any has one. */
export function sumUsage(a: TokenUsage, b: TokenUsage): TokenUsage {
  const sum = {
    inputTokens: a.inputTokens + b.inputTokens,
    outputTokens: a.outputTokens + b.outputTokens,
    totalTokens: a.totalTokens + b.totalTokens,
  };
  if (a.cost === undefined && b.cost === undefined) return sum;
  return { ...sum, cost: Math.round(((a.cost ?? 0) + (b.cost ?? 0)) * 1e9) / 1e9 };
}
