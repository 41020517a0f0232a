/**
 * What a summary request of an agent memory (`memory.summarize`, summarize.ts) sends and may spend. Apart
 * from summarize.ts so that the memory can estimate a summary before it loads the AI SDK to ask for one.
 *
 * @module
 */

import type { ConversationMessage, ModelSpec, TokenUsage } from "./agent_call.ts";
import { UsageMeter } from "./token_usage.ts";

export interface SummaryRequest {
  model: ModelSpec;
  maxTokens: number;
  /** The summary kept so far, if any. */
  previous?: string;
  /** The messages that leave the window, oldest first. */
  dropped: ConversationMessage[];
  signal?: AbortSignal;
}

/** The instructions of a summary request (exported for tests that script the model). */
export const SUMMARY_INSTRUCTIONS =
  "You keep the memory of a conversation between a user and an assistant. Write a short summary of it, " +
  "keeping facts, names, decisions and open questions. Reply with the summary only.";

/** The prompt of a summary request: the summary so far, then the messages leaving the window. */
export function summaryPrompt(request: Pick<SummaryRequest, "previous" | "dropped">): string {
  const transcript = request.dropped.map((m) => `${m.role}: ${m.content}`).join("\n\n");
  return (request.previous ? `Summary so far:\n${request.previous}\n\n` : "") +
    `Conversation to add:\n${transcript}`;
}

/**
 * The most a summary request may spend, before it is sent: its instructions and prompt at one token per 4
 * characters (no tokenizer runs, as for memory windows), its `maxTokens` of output, their cost at the
 * model's price.
 */
export function summaryEstimate(request: Omit<SummaryRequest, "signal">): TokenUsage {
  const inputTokens = Math.ceil((SUMMARY_INSTRUCTIONS.length + summaryPrompt(request).length) / 4);
  const meter = new UsageMeter(request.model.price);
  meter.add({ inputTokens, outputTokens: request.maxTokens, totalTokens: inputTokens + request.maxTokens });
  return meter.total;
}
