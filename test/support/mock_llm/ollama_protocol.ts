/**
 * Ollama's native chat API (`POST /api/chat`), as spoken by `ollama-ai-provider-v2`: one JSON object,
 * or NDJSON lines when `stream: true`. (Ollama's OpenAI-compatible `/v1` endpoint is the OpenAI mock.)
 *
 * @module
 */

import { DEFAULT_MOCK_USAGE, type MockAnswer } from "./mock_reply.ts";
import { jsonResponse, type MockProtocol, type RenderContext, streamResponse } from "./scripted_server.ts";

export const ollamaProtocol: MockProtocol = {
  basePath: "/api",
  path: "/api/chat",
  render: (answer, ctx) =>
    ctx.stream ? renderStream(answer, ctx) : jsonResponse(200, finalChunk(answer, ctx)),
  // Real Ollama sends `{ error: "<text>" }`; the provider parses the OpenAI-like shape, so send that.
  errorBody: (message) => ({ error: { message } }),
};

function message(answer: MockAnswer, ctx: RenderContext) {
  const content = answer.type === "text"
    ? answer.text
    : answer.type === "json"
    ? JSON.stringify(answer.value)
    : answer.text ?? "";
  const toolCalls = answer.type === "tool_calls"
    ? answer.calls.map((call) => ({
      id: call.id ?? ctx.nextId("call"),
      function: {
        name: call.name,
        // Ollama sends arguments as an object, never as a string.
        arguments: typeof call.arguments === "string" ? JSON.parse(call.arguments) : call.arguments,
      },
    }))
    : undefined;
  return { role: "assistant", content, ...(toolCalls ? { tool_calls: toolCalls } : {}) };
}

function finalChunk(answer: MockAnswer, ctx: RenderContext) {
  const { inputTokens, outputTokens } = answer.usage ?? DEFAULT_MOCK_USAGE;
  return {
    model: ctx.body.model,
    created_at: new Date().toISOString(),
    message: message(answer, ctx),
    done: true,
    done_reason: "stop",
    prompt_eval_count: inputTokens,
    eval_count: outputTokens,
  };
}

function renderStream(answer: MockAnswer, ctx: RenderContext): Response {
  const { message, ...done } = finalChunk(answer, ctx);
  const lines = [
    { model: done.model, created_at: done.created_at, message, done: false },
    { ...done, message: { role: "assistant", content: "" } },
  ];
  return streamResponse(lines.map((line) => JSON.stringify(line) + "\n"), "application/x-ndjson");
}
