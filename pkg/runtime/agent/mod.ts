/**
 * LLM agents for the system runtime (ARCHITECTURE.md, "Runtime and agents"): one call of {@link runAgent}
 * runs one agent action — a model from any supported provider, its instructions, the rendered prompt, a
 * tool-calling loop whose tools run in the sandbox through `callTool`, and structured output validated
 * against the action's schema with one repair attempt. It never throws: the result is the output with its
 * token usage, or a typed {@link AgentFailure} saying whether the engine may retry.
 *
 * This module runs trusted code only (provider clients); user tool code never runs here.
 *
 * @example
 * ```ts
 * import { runAgent } from "./mod.ts";
 * const result = await runAgent({
 *   agentId: "forecaster",
 *   actionId: "advise",
 *   model: { provider: "openai-compatible", model: "llama3.1", base_url: "http://127.0.0.1:11434/v1" },
 *   instructions: "You are a concise weather assistant.",
 *   prompt: "Advise about clothes in Lisbon",
 *   outputSchema: { type: "object", properties: { advice: { type: "string" } }, required: ["advice"] },
 *   tools: [],
 *   callTool: () => Promise.reject(new Error("no tools")),
 * });
 * if (result.ok) console.log(result.output, result.usage);
 * else console.log(result.failure.code, result.failure.retryable, result.failure.retryAfterMs);
 * ```
 *
 * @module
 */

export {
  type AgentBudget,
  type AgentCall,
  type AgentResult,
  type AgentToolSpec,
  type ConversationMessage,
  DEFAULT_MAX_STEPS,
  DEFAULT_MODEL_TIMEOUT_MS,
  type MockReply,
  type MockScript,
  type ModelPrice,
  type ModelSpec,
  type ProviderName,
  type TokenUsage,
} from "./agent_call.ts";
export {
  AgentFailure,
  type AgentFailureCode,
  type AgentFailureOptions,
  ToolCallGivenUp,
} from "./agent_failure.ts";
export { runAgent } from "./agent_runner.ts";
