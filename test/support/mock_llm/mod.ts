/**
 * Scripted LLM servers on loopback, so tests run the real AI SDK provider clients with nothing leaving
 * the machine. Each server answers one protocol, takes a queue of replies (text, JSON, tool calls, HTTP
 * errors, slow replies) and records every request body for assertions.
 *
 * | start with             | protocol                              | point a client at |
 * |------------------------|---------------------------------------|-------------------|
 * | `startMockOpenAI()`    | `POST /v1/chat/completions` (JSON/SSE) | `baseUrl` (`…/v1`): openai `.chat()`, openai-compatible, groq |
 * | `startMockAnthropic()` | `POST /v1/messages` (JSON/SSE)         | `baseUrl` (`…/v1`): `@ai-sdk/anthropic` |
 * | `startMockOllama()`    | `POST /api/chat` (JSON/NDJSON)         | `baseUrl` (`…/api`): `ollama-ai-provider-v2` |
 *
 * A request with no reply left gets a 500 naming it, so a test that under-scripts fails loudly.
 *
 * @example
 * ```ts
 * import { startMockOpenAI } from "./mod.ts";
 *
 * await using mock = startMockOpenAI();
 * mock.enqueue(
 *   { type: "tool_calls", calls: [{ name: "weather", arguments: { city: "Lisbon" } }] },
 *   { type: "json", value: { advice: "Take a coat" }, usage: { inputTokens: 30, outputTokens: 8 } },
 *   { type: "error", status: 429, headers: { "retry-after": "2" } },
 *   { type: "text", text: "too late", delayMs: 5_000 },
 * );
 * // … run the code under test against mock.baseUrl …
 * // mock.requests[0].body.messages is what the client sent first.
 * ```
 *
 * @module
 */

import { anthropicProtocol } from "./anthropic_protocol.ts";
import { ollamaProtocol } from "./ollama_protocol.ts";
import { openAIProtocol } from "./openai_protocol.ts";
import { type MockLlmServer, type ReplyFunction, startScriptedServer } from "./scripted_server.ts";

export type { MockLlmServer, ReplyFunction } from "./scripted_server.ts";
export {
  DEFAULT_MOCK_USAGE,
  type MockErrorReply,
  type MockJsonReply,
  type MockRawReply,
  type MockReply,
  type MockTextReply,
  type MockToolCall,
  type MockToolCallsReply,
  type MockUsage,
  type RecordedRequest,
} from "./mock_reply.ts";

/**
 * An OpenAI Chat Completions server on 127.0.0.1 with an ephemeral port; `replyFor` answers what the queue
 * does not.
 */
export function startMockOpenAI(replyFor?: ReplyFunction): MockLlmServer {
  return startScriptedServer(openAIProtocol, replyFor);
}

/** An Anthropic Messages server on 127.0.0.1 with an ephemeral port. */
export function startMockAnthropic(): MockLlmServer {
  return startScriptedServer(anthropicProtocol);
}

/** An Ollama native-chat server on 127.0.0.1 with an ephemeral port. */
export function startMockOllama(): MockLlmServer {
  return startScriptedServer(ollamaProtocol);
}
