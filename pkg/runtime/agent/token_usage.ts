/**
 * Token usage summed over every model request of one call.
 *
 * @module
 */

import type { LanguageModelUsage } from "ai";
import type { TokenUsage } from "./agent_call.ts";

/** A running total; `add` takes the AI SDK's per-request usage, where a provider may omit any count. */
export class UsageMeter {
  #input = 0;
  #output = 0;
  #total = 0;

  add(usage: LanguageModelUsage): void {
    const input = usage.inputTokens ?? 0;
    const output = usage.outputTokens ?? 0;
    this.#input += input;
    this.#output += output;
    // Some providers count more than input + output in the total (reasoning, cache); trust theirs when given.
    this.#total += usage.totalTokens ?? input + output;
  }

  get total(): TokenUsage {
    return { inputTokens: this.#input, outputTokens: this.#output, totalTokens: this.#total };
  }
}
