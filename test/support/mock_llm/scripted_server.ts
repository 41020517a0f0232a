/**
 * The protocol-independent half of the mock LLM servers: a loopback `Deno.serve` that records every
 * request and answers each one with the next scripted reply, rendered by a {@link MockProtocol}.
 *
 * @module
 */

import type { MockAnswer, MockReply, RecordedRequest } from "./mock_reply.ts";

/** What a protocol module needs to know about the request it answers. */
export interface RenderContext {
  // deno-lint-ignore no-explicit-any -- the parsed request body of whatever protocol is spoken
  body: any;
  /** Whether the client asked for a stream (SSE or NDJSON, per protocol). */
  stream: boolean;
  /** A fresh id, unique within this server, e.g. `call_3`. */
  nextId(prefix: string): string;
  /** Pause between streamed chunks (the reply's `chunkDelayMs`). */
  chunkDelayMs: number;
  /** Break the stream after this many chunks (the reply's `breakAfterChunks`). */
  breakAfterChunks?: number;
}

/** One wire protocol: where it listens and how it writes answers and errors. */
export interface MockProtocol {
  /** The prefix a client puts in its base URL, e.g. `/v1`. */
  basePath: string;
  /** The single route that answers model requests, e.g. `/v1/chat/completions`. */
  path: string;
  render(answer: MockAnswer, ctx: RenderContext): Response;
  errorBody(message: string, status: number): unknown;
}

/** A running mock LLM server. */
export interface MockLlmServer extends AsyncDisposable {
  /** `http://127.0.0.1:<port>` */
  url: string;
  /** `url` plus the protocol's base path: what goes into a provider client's `baseURL`. */
  baseUrl: string;
  /** Every request received, in order (a live array). */
  requests: RecordedRequest[];
  /** Appends replies to the script; each request consumes the first one left. */
  enqueue(...replies: MockReply[]): void;
  /** How many scripted replies are still unused. */
  readonly remaining: number;
  /** How many replies are waiting out their `delayMs` now: a client that gave up on one leaves it here. */
  readonly delayed: number;
  /** Cuts pending delays short and stops the server. */
  close(): Promise<void>;
}

/**
 * Answers a request from what it asks rather than from the queue: a test whose client may re-send a request
 * (a crash test) gets the same answer for the same conversation. Replies enqueued are still served first.
 */
export type ReplyFunction = (request: RecordedRequest) => MockReply | undefined;

/** Starts a server for `protocol` on 127.0.0.1 with an ephemeral port. */
export function startScriptedServer(protocol: MockProtocol, replyFor?: ReplyFunction): MockLlmServer {
  const script: MockReply[] = [];
  const requests: RecordedRequest[] = [];
  const closing = new AbortController();
  let idCounter = 0;
  let delayed = 0;
  const nextId = (prefix: string) => `${prefix}_${++idCounter}`;

  const respond = async (request: Request, info: Deno.ServeHandlerInfo<Deno.NetAddr>): Promise<Response> => {
    const url = new URL(request.url);
    const text = await request.text();
    const body = parseBody(text);
    const recorded = {
      method: request.method,
      path: url.pathname,
      headers: Object.fromEntries(request.headers),
      body,
      remotePort: info.remoteAddr.port,
    };
    requests.push(recorded);
    if (request.method !== "POST" || url.pathname !== protocol.path) {
      return jsonResponse(
        404,
        protocol.errorBody(`mock_llm: no route ${request.method} ${url.pathname}`, 404),
      );
    }
    const reply = script.shift() ?? replyFor?.(recorded);
    if (reply === undefined) {
      const message = `mock_llm: no scripted reply left for request #${requests.length}`;
      return jsonResponse(500, protocol.errorBody(message, 500));
    }
    if (reply.delayMs) {
      // The client's own time-out does not cut the delay short (Deno warns about request.signal listeners);
      // a late reply goes nowhere, and close() ends every pending delay.
      delayed++;
      const delivered = await sleep(reply.delayMs, closing.signal).finally(() => delayed--);
      if (!delivered) return new Response(null, { status: 503 });
    }
    if (reply.type === "error") {
      const errorBody = reply.body ??
        protocol.errorBody(reply.message ?? `mock error ${reply.status}`, reply.status);
      return jsonResponse(reply.status, errorBody, reply.headers);
    }
    if (reply.type === "raw") {
      const contentType = reply.contentType ?? "text/event-stream";
      return streamResponse(reply.chunks, contentType, reply.chunkDelayMs, reply.breakAfterChunks);
    }
    return protocol.render(reply, {
      body,
      stream: body?.stream === true,
      nextId,
      chunkDelayMs: reply.chunkDelayMs ?? 0,
      breakAfterChunks: reply.breakAfterChunks,
    });
  };

  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, respond);
  const url = `http://127.0.0.1:${server.addr.port}`;

  const close = async () => {
    closing.abort();
    await server.shutdown();
  };
  return {
    url,
    baseUrl: url + protocol.basePath,
    requests,
    enqueue: (...replies) => void script.push(...replies),
    get remaining() {
      return script.length;
    },
    get delayed() {
      return delayed;
    },
    close,
    [Symbol.asyncDispose]: close,
  };
}

/** A JSON response with optional extra headers (e.g. `retry-after`). */
export function jsonResponse(status: number, body: unknown, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { "content-type": "application/json", ...headers },
  });
}

/**
 * A streaming response made of pre-rendered chunks (SSE events or NDJSON lines), `delayMs` apart; with
 * `breakAfter`, the body fails after that many chunks, as a connection reset mid-reply.
 */
export function streamResponse(
  chunks: string[],
  contentType: string,
  delayMs = 0,
  breakAfter?: number,
): Response {
  const encoder = new TextEncoder();
  let next = 0;
  const stream = new ReadableStream<Uint8Array>({
    async pull(controller) {
      if (next > 0 && delayMs > 0) await new Promise((resolve) => setTimeout(resolve, delayMs));
      if (breakAfter !== undefined && next >= breakAfter) {
        return controller.error(new Error("connection reset"));
      }
      if (next < chunks.length) controller.enqueue(encoder.encode(chunks[next++]));
      if (next >= chunks.length) controller.close();
    },
  });
  return new Response(stream, { headers: { "content-type": contentType, "cache-control": "no-cache" } });
}

/**
 * `text` in the pieces a streaming model sends it in: word by word (each word with the spaces around it), so
 * a stream carries several deltas whose concatenation is `text`.
 */
export function wordsOf(text: string): string[] {
  return text.match(/\s*\S+\s*/g) ?? (text ? [text] : []);
}

/** A tool call's JSON arguments in pieces of `size` characters, as providers stream them. */
export function piecesOf(json: string, size = 8): string[] {
  const pieces: string[] = [];
  for (let at = 0; at < json.length; at += size) pieces.push(json.slice(at, at + size));
  return pieces.length ? pieces : [""];
}

function parseBody(text: string): RecordedRequest["body"] {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/** Resolves true after `ms`, or false as soon as `signal` aborts. */
function sleep(ms: number, signal: AbortSignal): Promise<boolean> {
  if (signal.aborted) return Promise.resolve(false);
  return new Promise((resolve) => {
    const onAbort = () => {
      clearTimeout(timer);
      resolve(false);
    };
    const timer = setTimeout(() => {
      signal.removeEventListener("abort", onAbort);
      resolve(true);
    }, ms);
    signal.addEventListener("abort", onAbort, { once: true });
  });
}
