/**
 * The `mock` provider: a language model that answers from a script in the project file instead of a
 * network call, for offline development and for tests of a user's own workflows. It is a real AI SDK model,
 * so the agent loop around it (tool calls through the sandbox, structured output with its one repair, the
 * step bound, usage) runs exactly as it does with a provider.
 *
 * Semantics, exactly:
 * - The script is chosen once per call: `replies["<agent>.<action>"]`, else `replies["<action>"]`, else
 *   `replies.default`.
 * - The model's Nth request in a call (N = replies already given in that conversation, the repair request
 *   included) gets the script's Nth reply; past the end, the last reply again.
 * - With no script, the reply is generated: for an action with an output schema, the smallest object the
 *   schema accepts (from its `default`s, `enum`s, `const`s and types); otherwise `{ text }` naming the agent.
 * - Usage: the reply's `usage` when given, else one token per 4 characters of prompt and of reply.
 * - Streamed (the loop streams every request): a reply's text comes word by word, one delta per word with
 *   the spaces after it, as a provider's tokens come, so the live view and the SSE deltas show it growing.
 *
 * @module
 */

import type { LanguageModel } from "ai";
import type { MockReply, MockScript } from "./agent_call.ts";
import { configInvalid } from "./agent_failure.ts";

type LanguageModelV4 = Extract<LanguageModel, { specificationVersion: "v4" }>;
type CallOptions = Parameters<LanguageModelV4["doGenerate"]>[0];
type GenerateResult = Awaited<ReturnType<LanguageModelV4["doGenerate"]>>;
type StreamPart = Awaited<ReturnType<LanguageModelV4["doStream"]>>["stream"] extends ReadableStream<infer P>
  ? P
  : never;

/** Which agent action the model answers for: it picks the script. */
export interface MockScope {
  agentId: string;
  actionId?: string;
}

/**
 * Builds the scripted model. Throws `agent_config_invalid` for a script whose replies are not lists of
 * replies with exactly one of `text`, `output` or `tool_calls`.
 *
 * @example
 * ```ts
 * import { createMockModel } from "./mock_model.ts";
 * const model = createMockModel("scripted", {
 *   replies: { advise: [{ tool_calls: [{ tool: "weather_tool", input: { city: "Lisbon" } }] }, { output: { advice: "coat" } }] },
 * }, { agentId: "forecaster", actionId: "advise" });
 * ```
 */
export function createMockModel(
  modelId: string,
  script: MockScript | undefined,
  scope: MockScope,
): LanguageModel {
  const replies = pickScript(checkScript(script), scope);
  const model: LanguageModelV4 = {
    specificationVersion: "v4",
    provider: "mock",
    modelId,
    supportedUrls: {},
    doGenerate: (options) => Promise.resolve(answer(replies, scope, options)),
    doStream: (options) => Promise.resolve({ stream: streamOf(answer(replies, scope, options)) }),
  };
  return model;
}

/** The reply as a provider streams it: text word by word, tool calls whole, then the finish with usage. */
function streamOf(result: GenerateResult): ReadableStream<StreamPart> {
  const parts: StreamPart[] = [{ type: "stream-start", warnings: result.warnings }];
  result.content.forEach((part, index) => {
    if (part.type !== "text") return parts.push(part as StreamPart);
    if (part.text === "") return;
    const id = String(index);
    parts.push({ type: "text-start", id });
    // Blanks only (no word) stay one delta.
    for (const word of part.text.match(/\s*\S+\s*/g) ?? [part.text]) {
      parts.push({ type: "text-delta", id, delta: word });
    }
    parts.push({ type: "text-end", id });
  });
  parts.push({ type: "finish", finishReason: result.finishReason, usage: result.usage });
  return new ReadableStream({
    start(controller) {
      parts.forEach((part) => controller.enqueue(part));
      controller.close();
    },
  });
}

function checkScript(script: MockScript | undefined): Record<string, MockReply[]> {
  const replies = script?.replies ?? {};
  if (typeof replies !== "object" || Array.isArray(replies)) {
    throw configInvalid(
      "Cannot create a mock model as 'mock.replies' must map action ids to lists of replies",
      {
        field: "mock",
      },
    );
  }
  for (const [key, list] of Object.entries(replies)) {
    if (!Array.isArray(list)) {
      throw configInvalid(`Cannot create a mock model as 'mock.replies.${key}' is not a list of replies`, {
        field: "mock",
      });
    }
    list.forEach((reply, index) => {
      const kinds = ["text", "output", "tool_calls"].filter((kind) => reply && Object.hasOwn(reply, kind));
      if (kinds.length !== 1) {
        throw configInvalid(
          `Cannot create a mock model as 'mock.replies.${key}[${index}]' must have exactly one of text, ` +
            `output or tool_calls: current keys are ${JSON.stringify(Object.keys(reply ?? {}))}`,
          { field: "mock" },
        );
      }
    });
  }
  return replies;
}

function pickScript(replies: Record<string, MockReply[]>, scope: MockScope): MockReply[] {
  const keys = scope.actionId
    ? [`${scope.agentId}.${scope.actionId}`, scope.actionId, "default"]
    : ["default"];
  for (const key of keys) {
    if (Object.hasOwn(replies, key)) return replies[key];
  }
  return [];
}

function answer(replies: MockReply[], scope: MockScope, options: CallOptions): GenerateResult {
  const given = options.prompt.filter((message) => message.role === "assistant").length;
  const reply = replies[Math.min(given, replies.length - 1)] ?? generatedReply(scope, options);
  const promptChars = JSON.stringify(options.prompt).length;
  if (reply.tool_calls) {
    const content = reply.tool_calls.map((call, index) => ({
      type: "tool-call" as const,
      toolCallId: `mock-${given + 1}-${index + 1}`,
      toolName: call.tool,
      input: JSON.stringify(call.input ?? {}),
    }));
    return result(content, "tool-calls", reply, promptChars, JSON.stringify(reply.tool_calls).length);
  }
  const text = reply.text ?? JSON.stringify(reply.output);
  return result([{ type: "text", text }], "stop", reply, promptChars, text.length);
}

function result(
  content: GenerateResult["content"],
  finish: "stop" | "tool-calls",
  reply: MockReply,
  promptChars: number,
  replyChars: number,
): GenerateResult {
  const input = reply.usage?.input_tokens ?? Math.ceil(promptChars / 4);
  const output = reply.usage?.output_tokens ?? Math.ceil(replyChars / 4);
  return {
    content,
    finishReason: { unified: finish, raw: finish },
    usage: {
      inputTokens: { total: input, noCache: input, cacheRead: undefined, cacheWrite: undefined },
      outputTokens: { total: output, text: output, reasoning: undefined },
    },
    warnings: [],
  };
}

function generatedReply(scope: MockScope, options: CallOptions): MockReply {
  const format = options.responseFormat;
  if (format?.type === "json") return { output: sampleValue(format.schema ?? {}) };
  const action = scope.actionId ? ` action '${scope.actionId}'` : "";
  return { text: `mock reply from agent '${scope.agentId}'${action}` };
}

/** The smallest value `schema` accepts for the common shapes hand-written schemas use. */
export function sampleValue(schema: unknown): unknown {
  if (typeof schema !== "object" || schema === null) return null;
  const s = schema as Record<string, unknown>;
  if ("const" in s) return s.const;
  if ("default" in s) return s.default;
  if (Array.isArray(s.enum) && s.enum.length > 0) return s.enum[0];
  const type = Array.isArray(s.type) ? s.type[0] : s.type;
  switch (type) {
    case "object": {
      const properties = (s.properties ?? {}) as Record<string, unknown>;
      const required = Array.isArray(s.required) ? s.required as string[] : Object.keys(properties);
      return Object.fromEntries(required.map((name) => [name, sampleValue(properties[name] ?? {})]));
    }
    case "array":
      return Array.from({ length: Number(s.minItems ?? 0) }, () => sampleValue(s.items ?? {}));
    case "string":
      return "mock".padEnd(Number(s.minLength ?? 0), "-");
    case "integer":
    case "number":
      return Math.max(0, Number(s.minimum ?? 0));
    case "boolean":
      return false;
    default:
      return null;
  }
}
