/**
 * The summary of what falls out of an agent memory's window (`memory.summarize`): one model request that
 * folds the earlier summary and the dropped messages into a new summary, so a long conversation keeps its
 * gist instead of forgetting it. Bounded like any model request (the model's `timeout_ms`, default
 * {@link DEFAULT_MODEL_TIMEOUT_MS}), never retried here.
 *
 * @module
 */

import { generateText } from "ai";
import {
  type ConversationMessage,
  DEFAULT_MODEL_TIMEOUT_MS,
  type ModelSpec,
  type TokenUsage,
} from "./agent_call.ts";
import { failureFromModelError } from "./provider_errors.ts";
import { resolveModel } from "./provider_factory.ts";
import { tokenUsage, UsageMeter } from "./token_usage.ts";

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

/**
 * Asks `model` for the new summary.
 *
 * @throws {AgentFailure} when the request fails (its provider failure, or `agent_timeout`).
 */
export async function summarize(request: SummaryRequest): Promise<{ summary: string; usage: TokenUsage }> {
  const { model, providerOptions } = resolveModel(request.model, {
    agentId: "memory",
    actionId: "summarize",
  });
  const timeoutMs = request.model.timeout_ms ?? DEFAULT_MODEL_TIMEOUT_MS;
  const timeout = AbortSignal.timeout(timeoutMs);
  const signal = request.signal ? AbortSignal.any([request.signal, timeout]) : timeout;
  const prompt = summaryPrompt(request);
  try {
    const reply = await generateText({
      model,
      instructions: SUMMARY_INSTRUCTIONS,
      prompt,
      maxOutputTokens: request.maxTokens,
      providerOptions,
      maxRetries: 0,
      abortSignal: signal,
    });
    const meter = new UsageMeter(request.model.price);
    meter.add(tokenUsage(reply.usage));
    return { summary: reply.text.trim(), usage: meter.total };
  } catch (error) {
    throw failureFromModelError(error, {
      label: "agent memory summary",
      timedOut: timeout.aborted,
      timeoutMs,
      callerSignal: request.signal,
    });
  }
}
