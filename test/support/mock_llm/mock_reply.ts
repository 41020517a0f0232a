/**
 * The script a test hands to a mock LLM server: one {@link MockReply} per model request, served in
 * order. The shapes are protocol-neutral; each protocol module renders them in its own wire format.
 *
 * @module
 */

/** Token counts the mock reports for one reply. */
export interface MockUsage {
  inputTokens: number;
  outputTokens: number;
}

/** Reported when a reply does not say otherwise, so that usage sums are predictable in tests. */
export const DEFAULT_MOCK_USAGE: Readonly<MockUsage> = { inputTokens: 10, outputTokens: 5 };

/** One tool call the mock model asks for. */
export interface MockToolCall {
  /** Defaults to `call_<n>`, unique within the server. */
  id?: string;
  name: string;
  /** An object is sent as JSON; a string is sent as is, which scripts malformed arguments. */
  arguments: unknown;
}

interface ReplyTiming {
  /** Wait this long before answering (a slow model). Only close() cuts it short; a client that gave up gets nothing. */
  delayMs?: number;
  /**
   * When the client streams (OpenAI and Anthropic protocols, which send text word by word and tool arguments
   * in pieces): this long between chunks, so a test can see deltas arrive while the reply is being written.
   */
  chunkDelayMs?: number;
  /** When the client streams: the connection breaks after this many chunks (a provider dying mid-reply). */
  breakAfterChunks?: number;
}

/** A successful reply: plain text (which may be anything, including broken JSON). */
export interface MockTextReply extends ReplyTiming {
  type: "text";
  text: string;
  usage?: MockUsage;
}

/**
 * A structured-output reply. Sent as text holding `JSON.stringify(value)`, except when the request offers a
 * tool named `json` — the AI SDK's JSON response tool, used by Anthropic without native structured output
 * and by Groq alongside function tools: then it is a call of that tool with `value` as input, as the real
 * APIs answer.
 */
export interface MockJsonReply extends ReplyTiming {
  type: "json";
  value: unknown;
  usage?: MockUsage;
}

/** The model asks for tools; `text` is optional prose sent alongside. */
export interface MockToolCallsReply extends ReplyTiming {
  type: "tool_calls";
  calls: readonly MockToolCall[];
  text?: string;
  usage?: MockUsage;
}

/** An HTTP error. `body` defaults to the protocol's own error shape carrying `message`. */
export interface MockErrorReply extends ReplyTiming {
  type: "error";
  status: number;
  message?: string;
  body?: unknown;
  headers?: Record<string, string>;
}

/**
 * A body sent exactly as given with status 200 (a provider's garbage: a broken stream, an HTML page);
 * `chunks` are streamed `chunkDelayMs` apart.
 */
export interface MockRawReply extends ReplyTiming {
  type: "raw";
  chunks: string[];
  contentType?: string;
}

export type MockReply = MockTextReply | MockJsonReply | MockToolCallsReply | MockErrorReply | MockRawReply;

/** A reply the protocol renders as a model answer (errors are rendered by the server itself). */
export type MockAnswer = MockTextReply | MockJsonReply | MockToolCallsReply;

/** Every request the server received, in arrival order, including ones it had no reply for. */
export interface RecordedRequest {
  method: string;
  path: string;
  headers: Record<string, string>;
  /** The parsed JSON body (or the raw text when it was not JSON). */
  // deno-lint-ignore no-explicit-any -- tests dig into provider-specific request shapes
  body: any;
  /** The client's port: which process asked, for a test that must kill that one (test/support/socket_owner.ts). */
  remotePort: number;
}
