/**
 * The summary of what falls out of an agent memory's window (`memory.summarize`): one model request that
 * folds the earlier summary and the dropped messages into a new summary, so a long conversation keeps its
 * gist instead of forgetting it. Bounded like any model request (the model's `timeout_ms`, default
 * {@link DEFAULT_MODEL_TIMEOUT_MS}), never retried here.
 *
 * @module
 */

import { generateText } from "ai";
import { DEFAULT_MODEL_TIMEOUT_MS, type TokenUsage } from "./agent_call.ts";
import { redactAgentFailure } from "./agent_failure.ts";
import { failureFromModelError } from "./provider_errors.ts";
import { resolveModel } from "./provider_factory.ts";
import { SUMMARY_INSTRUCTIONS, summaryPrompt, type SummaryRequest } from "./summary_request.ts";
import { tokenUsage, UsageMeter } from "./token_usage.ts";

/**
 * Asks `model` for the new summary.
 *
 * @throws {AgentFailure} when the request fails (its provider failure, or `agent_timeout`).
 */
export async function summarize(request: SummaryRequest): Promise<{ summary: string; usage: TokenUsage }> {
  const { model, providerOptions } = await resolveModel(request.model, {
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
    // Logged by the memory, which keeps the answer: the key a provider's error may echo stays out of the logs.
    const failure = failureFromModelError(error, {
      label: "agent memory summary",
      timedOut: timeout.aborted,
      timeoutMs,
      callerSignal: request.signal,
    });
    throw redactAgentFailure(failure, request.model);
  }
}
