/**
 * The one place where whatever a model request throws becomes an {@link AgentFailure}. The AI SDK's own
 * retries are off (`maxRetries: 0`), so every provider error reaches here on its first occurrence and the
 * engine's retry policy, fed by `retryable` and `retryAfterMs`, is the only one that runs.
 *
 * @module
 */

import { APICallError, LoadAPIKeyError, ToolChoiceViolationError } from "ai";
import { AgentFailure, configInvalid, errorMessage } from "./agent_failure.ts";

/** What the runner knows about the request that failed. */
export interface FailedRequest {
  /** Who failed, for messages: `agent 'forecaster' action 'advise'`. */
  label: string;
  timeoutMs: number;
  /** Whether the request's own `timeout_ms` timer fired. */
  timedOut: boolean;
  /** The caller's signal, if any. */
  callerSignal?: AbortSignal;
}

/** Provider error bodies are for humans; a bounded excerpt is enough and keeps events small. */
const MAX_BODY_EXCERPT = 1_000;

/**
 * Maps what a model request threw. Time-outs and aborts are decided from the signals, not the error: an
 * aborted fetch throws whatever its signal's reason was, which says nothing about who aborted it.
 */
export function failureFromModelError(error: unknown, request: FailedRequest): AgentFailure {
  if (error instanceof AgentFailure) return error;
  const { label } = request;
  if (request.timedOut) {
    return new AgentFailure(
      "agent_timeout",
      `${label}: the model did not answer within ${request.timeoutMs} ms`,
      {
        retryable: true,
        details: { timeoutMs: request.timeoutMs },
        cause: error,
      },
    );
  }
  if (request.callerSignal?.aborted) return callerAborted(label, request.callerSignal.reason);
  if (APICallError.isInstance(error)) return failureFromApiCall(error, label);
  if (LoadAPIKeyError.isInstance(error)) {
    return configInvalid(`${label}: no API key: ${error.message}`, { field: "api_key" }, error);
  }
  if (ToolChoiceViolationError.isInstance(error)) {
    // Tool choice is only restricted on the repair request, where the model must answer, not call tools.
    return new AgentFailure(
      "agent_output_invalid",
      `${label}: the model called a tool instead of repairing its output`,
      {
        retryable: false,
        cause: error,
      },
    );
  }
  // Anything else is a reply the SDK could not make sense of (malformed JSON, a proxy's HTML page…):
  // possibly transient, so retryable, and bounded by the task's retry policy like any other failure.
  const name = error instanceof Error ? error.name : typeof error;
  return new AgentFailure(
    "agent_provider_error",
    `${label}: the model request failed: ${errorMessage(error)}`,
    {
      retryable: true,
      details: { error: name },
      cause: error,
    },
  );
}

function failureFromApiCall(error: APICallError, label: string): AgentFailure {
  const status = error.statusCode;
  const details = {
    ...(status !== undefined ? { status } : {}),
    url: error.url,
    ...(error.responseBody ? { body: error.responseBody.slice(0, MAX_BODY_EXCERPT) } : {}),
  };
  // The SDK's message can be its generic "Failed to process successful response"; its cause says why (the
  // connection broke midway: "error reading a body from connection").
  const why = error.cause === undefined ? "" : errorMessage(error.cause);
  const cause = why && !error.message.includes(why) ? `: ${why}` : "";
  const message = `${label}: ${
    status !== undefined ? `HTTP ${status} from ` : ""
  }${error.url}: ${error.message}${cause}`;
  if (status === 401 || status === 403) {
    return new AgentFailure("agent_provider_auth", message, { retryable: false, details, cause: error });
  }
  if (status === 429) {
    const retryAfterMs = retryAfterFromHeaders(error.responseHeaders);
    return new AgentFailure("agent_rate_limited", message, {
      retryable: true,
      retryAfterMs,
      details,
      cause: error,
    });
  }
  // No status means the request never got an answer (refused, reset): the SDK flags those retryable. A 2xx
  // whose body could not be read (a stream broken midway, a truncated body) is as transient as a reset.
  const retryable = status === undefined ? error.isRetryable : status >= 500 || status < 300;
  return new AgentFailure("agent_provider_error", message, { retryable, details, cause: error });
}

/**
 * Aborted by the caller: the engine's task time-out (a `TimeoutError` reason, e.g. `AbortSignal.timeout`) is a
 * retryable `agent_timeout`; any other reason (the task or its execution was canceled) is `agent_canceled`,
 * never retried, as a tool's canceled call is `tool_canceled`.
 */
function callerAborted(label: string, reason: unknown): AgentFailure {
  const isTimeout = reason instanceof DOMException && reason.name === "TimeoutError";
  return new AgentFailure(
    isTimeout ? "agent_timeout" : "agent_canceled",
    `${label}: aborted by the caller: ${errorMessage(reason)}`,
    { retryable: isTimeout, details: { aborted: true }, cause: reason },
  );
}

/**
 * The delay a 429 asks for: `retry-after-ms` (OpenAI's, precise) first, then `retry-after` as seconds or as
 * an HTTP date. Undefined when neither header is usable; a date in the past gives 0.
 *
 * @example
 * ```ts
 * import { retryAfterFromHeaders } from "./provider_errors.ts";
 * retryAfterFromHeaders({ "retry-after": "2" }); // 2000
 * retryAfterFromHeaders({ "retry-after": "Wed, 21 Oct 2015 07:28:00 GMT" }, Date.UTC(2015, 9, 21, 7, 27, 30)); // 30000
 * ```
 */
export function retryAfterFromHeaders(
  headers: Record<string, string> | undefined,
  now: number = Date.now(),
): number | undefined {
  if (!headers) return undefined;
  const ms = headers["retry-after-ms"]?.trim();
  if (ms && /^\d+(\.\d+)?$/.test(ms)) return Math.ceil(Number(ms));
  const value = headers["retry-after"]?.trim();
  if (!value) return undefined;
  if (/^\d+(\.\d+)?$/.test(value)) return Math.ceil(Number(value) * 1000);
  // Date.parse takes nearly anything ("-3" is a year); every HTTP date form names its month in letters.
  const date = /[A-Za-z]{3}/.test(value) ? Date.parse(value) : NaN;
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}
