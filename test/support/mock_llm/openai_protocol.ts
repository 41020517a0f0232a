/**
 * OpenAI Chat Completions (`POST /v1/chat/completions`), as spoken by `@ai-sdk/openai`'s `.chat()`,
 * `@ai-sdk/openai-compatible` and `@ai-sdk/groq`: a JSON body, or SSE chunks when `stream: true`.
 *
 * @module
 */

import { DEFAULT_MOCK_USAGE, type MockAnswer } from "./mock_reply.ts";
import {
  jsonResponse,
  type MockProtocol,
  piecesOf,
  type RenderContext,
  streamResponse,
  wordsOf,
} from "./scripted_server.ts";

export const openAIProtocol: MockProtocol = {
  basePath: "/v1",
  path: "/v1/chat/completions",
  render: (answer, ctx) => ctx.stream ? renderStream(answer, ctx) : renderJson(answer, ctx),
  errorBody: (message, status) => ({
    error: { message, type: status === 429 ? "rate_limit_exceeded" : "mock_error", code: null },
  }),
};

interface OpenAIToolCall {
  id: string;
  type: "function";
  function: { name: string; arguments: string };
}

/**
 * The name the AI SDK gives its JSON response tool (Groq when the request also has function tools): a
 * `json` reply then answers through that tool, as the real API would.
 */
const JSON_RESPONSE_TOOL = "json";

function offersJsonTool(ctx: RenderContext): boolean {
  // deno-lint-ignore no-explicit-any -- request tools are whatever the client sent
  return (ctx.body.tools ?? []).some((tool: any) => tool.function?.name === JSON_RESPONSE_TOOL);
}

function assistantMessage(answer: MockAnswer, ctx: RenderContext) {
  if (answer.type === "json" && offersJsonTool(ctx)) {
    answer = {
      ...answer,
      type: "tool_calls",
      calls: [{ name: JSON_RESPONSE_TOOL, arguments: answer.value }],
    };
  }
  const toolCalls: OpenAIToolCall[] = answer.type === "tool_calls"
    ? answer.calls.map((call) => ({
      id: call.id ?? ctx.nextId("call"),
      type: "function",
      function: {
        name: call.name,
        arguments: typeof call.arguments === "string" ? call.arguments : JSON.stringify(call.arguments),
      },
    }))
    : [];
  const content = answer.type === "text"
    ? answer.text
    : answer.type === "json"
    ? JSON.stringify(answer.value)
    : answer.text ?? null;
  const finishReason = toolCalls.length > 0 ? "tool_calls" : "stop";
  const { inputTokens, outputTokens } = answer.usage ?? DEFAULT_MOCK_USAGE;
  const usage = {
    prompt_tokens: inputTokens,
    completion_tokens: outputTokens,
    total_tokens: inputTokens + outputTokens,
  };
  return { content, toolCalls, finishReason, usage };
}

function renderJson(answer: MockAnswer, ctx: RenderContext): Response {
  const { content, toolCalls, finishReason, usage } = assistantMessage(answer, ctx);
  return jsonResponse(200, {
    id: ctx.nextId("chatcmpl"),
    object: "chat.completion",
    created: Math.floor(Date.now() / 1000),
    model: ctx.body.model,
    choices: [{
      index: 0,
      message: { role: "assistant", content, ...(toolCalls.length > 0 ? { tool_calls: toolCalls } : {}) },
      finish_reason: finishReason,
    }],
    usage,
  });
}

function renderStream(answer: MockAnswer, ctx: RenderContext): Response {
  const { content, toolCalls, finishReason, usage } = assistantMessage(answer, ctx);
  const base = {
    id: ctx.nextId("chatcmpl"),
    object: "chat.completion.chunk",
    created: 0,
    model: ctx.body.model,
  };
  const chunk = (delta: unknown, finish: string | null = null) => ({
    ...base,
    choices: [{ index: 0, delta, finish_reason: finish }],
  });
  const events: unknown[] = [chunk({ role: "assistant", content: "" })];
  // Word by word, as a model streams (a delta view sees several pieces).
  for (const piece of wordsOf(content ?? "")) events.push(chunk({ content: piece }));
  // A call's id and name first, then its arguments in pieces, as the API streams them.
  toolCalls.forEach((call, index) => {
    const [first, ...rest] = piecesOf(call.function.arguments);
    events.push(
      chunk({ tool_calls: [{ index, ...call, function: { ...call.function, arguments: first } }] }),
    );
    for (const piece of rest) events.push(chunk({ tool_calls: [{ index, function: { arguments: piece } }] }));
  });
  events.push(chunk({}, finishReason), { ...base, choices: [], usage });
  const lines = events.map((event) => `data: ${JSON.stringify(event)}\n\n`);
  return streamResponse(
    [...lines, "data: [DONE]\n\n"],
    "text/event-stream",
    ctx.chunkDelayMs,
    ctx.breakAfterChunks,
  );
}
