/**
 * Anthropic Messages (`POST /v1/messages`), as spoken by `@ai-sdk/anthropic`: a JSON body, or SSE
 * events when `stream: true`.
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

export const anthropicProtocol: MockProtocol = {
  basePath: "/v1",
  path: "/v1/messages",
  render: (answer, ctx) => ctx.stream ? renderStream(answer, ctx) : renderJson(answer, ctx),
  errorBody: (message, status) => ({ type: "error", error: { type: errorType(status), message } }),
};

type ContentBlock =
  | { type: "text"; text: string }
  | { type: "tool_use"; id: string; name: string; input: unknown };

/** The name `@ai-sdk/anthropic` gives its response tool when it cannot use native structured output. */
const JSON_RESPONSE_TOOL = "json";

function contentBlocks(answer: MockAnswer, ctx: RenderContext): ContentBlock[] {
  switch (answer.type) {
    case "text":
      return [{ type: "text", text: answer.text }];
    case "json": {
      // deno-lint-ignore no-explicit-any -- request tools are whatever the client sent
      const offersJsonTool = (ctx.body.tools ?? []).some((tool: any) => tool.name === JSON_RESPONSE_TOOL);
      return offersJsonTool
        ? [{ type: "tool_use", id: ctx.nextId("toolu"), name: JSON_RESPONSE_TOOL, input: answer.value }]
        : [{ type: "text", text: JSON.stringify(answer.value) }];
    }
    case "tool_calls":
      return [
        ...(answer.text ? [{ type: "text" as const, text: answer.text }] : []),
        ...answer.calls.map((call) => ({
          type: "tool_use" as const,
          id: call.id ?? ctx.nextId("toolu"),
          name: call.name,
          input: typeof call.arguments === "string" ? parseLoosely(call.arguments) : call.arguments,
        })),
      ];
  }
}

function renderJson(answer: MockAnswer, ctx: RenderContext): Response {
  const content = contentBlocks(answer, ctx);
  const { inputTokens, outputTokens } = answer.usage ?? DEFAULT_MOCK_USAGE;
  return jsonResponse(200, {
    id: ctx.nextId("msg"),
    type: "message",
    role: "assistant",
    model: ctx.body.model,
    content,
    stop_reason: stopReason(content),
    stop_sequence: null,
    usage: { input_tokens: inputTokens, output_tokens: outputTokens },
  });
}

function renderStream(answer: MockAnswer, ctx: RenderContext): Response {
  const content = contentBlocks(answer, ctx);
  const { inputTokens, outputTokens } = answer.usage ?? DEFAULT_MOCK_USAGE;
  const events: Array<[string, unknown]> = [["message_start", {
    type: "message_start",
    message: {
      id: ctx.nextId("msg"),
      type: "message",
      role: "assistant",
      model: ctx.body.model,
      content: [],
      stop_reason: null,
      stop_sequence: null,
      usage: { input_tokens: inputTokens, output_tokens: 0 },
    },
  }]];
  content.forEach((block, index) => {
    const start = block.type === "text" ? { type: "text", text: "" } : { ...block, input: {} };
    // Text word by word, tool input in pieces of JSON, as the API streams them.
    const deltas = block.type === "text"
      ? wordsOf(block.text).map((text) => ({ type: "text_delta", text }))
      : piecesOf(JSON.stringify(block.input)).map((partial_json) => ({
        type: "input_json_delta",
        partial_json,
      }));
    events.push(["content_block_start", { type: "content_block_start", index, content_block: start }]);
    for (const delta of deltas) {
      events.push(["content_block_delta", { type: "content_block_delta", index, delta }]);
    }
    events.push(["content_block_stop", { type: "content_block_stop", index }]);
  });
  events.push(
    ["message_delta", {
      type: "message_delta",
      delta: { stop_reason: stopReason(content), stop_sequence: null },
      usage: { output_tokens: outputTokens },
    }],
    ["message_stop", { type: "message_stop" }],
  );
  const chunks = events.map(([name, data]) => `event: ${name}\ndata: ${JSON.stringify(data)}\n\n`);
  return streamResponse(chunks, "text/event-stream", ctx.chunkDelayMs, ctx.breakAfterChunks);
}

function stopReason(content: ContentBlock[]): string {
  return content.some((block) => block.type === "tool_use") ? "tool_use" : "end_turn";
}

/** Anthropic's documented error types, so a client that branches on them sees the real ones. */
function errorType(status: number): string {
  if (status === 401) return "authentication_error";
  if (status === 403) return "permission_error";
  if (status === 429) return "rate_limit_error";
  if (status === 529) return "overloaded_error";
  return status >= 500 ? "api_error" : "invalid_request_error";
}

/** Tool input on this protocol is an object, so scripted argument strings are parsed when they can be. */
function parseLoosely(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}
