/**
 * The one error type of the HTTP API. Every failure, whether thrown by a route, the engine client or NATS,
 * becomes `{"error": {"code", "message", "details"}}` with its status here and nowhere else.
 *
 * @module
 */
import { errors as natsErrors } from "@nats-io/transport-node";
import { HTTPException } from "hono/http-exception";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import {
  ExecutionConflictError,
  ExecutionNotFoundError,
  InputValidationError,
  UnknownWorkflowError,
} from "../engine/errors.ts";
import { MalformedCursorError } from "../engine/history/event_page.ts";
import {
  MessageTooLargeError,
  NatsUnavailableError,
  PublishError,
  RequestError,
  StreamReadError,
} from "../pkg/nats/errors.ts";

/** The JSON body of every error response. */
export interface ErrorBody {
  error: { code: string; message: string; details: unknown[] };
}

/**
 * An HTTP error with a stable machine code. Thrown anywhere under a route; `app.onError` turns it into the
 * error body.
 *
 * @example
 * ```ts
 * throw new ApiError(404, "execution_not_found", "Unknown execution '0193…'");
 * ```
 */
export class ApiError extends HTTPException {
  override name = "ApiError";

  constructor(
    status: ContentfulStatusCode,
    readonly code: string,
    message: string,
    readonly details: unknown[] = [],
    readonly headers: Record<string, string> = {},
    options?: ErrorOptions,
  ) {
    super(status, { message, cause: options?.cause });
  }

  override getResponse(): Response {
    const body: ErrorBody = { error: { code: this.code, message: this.message, details: this.details } };
    return new Response(JSON.stringify(body), {
      status: this.status,
      headers: { "content-type": "application/json; charset=utf-8", ...this.headers },
    });
  }
}

/**
 * Maps any thrown value to an ApiError: the engine's typed errors to 404/409/422, NATS outages to 503, and
 * everything else to a 500 whose message does not leak internals.
 */
export function toApiError(e: unknown): ApiError {
  if (e instanceof ApiError) return e;
  if (e instanceof UnknownWorkflowError) {
    return new ApiError(404, "workflow_not_found", e.message, [{ workflow_id: e.workflowId }]);
  }
  if (e instanceof ExecutionNotFoundError) {
    return new ApiError(404, "execution_not_found", e.message, [{ exec_id: e.execId }]);
  }
  if (e instanceof ExecutionConflictError) {
    return new ApiError(409, "execution_conflict", e.message, [{ exec_id: e.execId, status: e.status }]);
  }
  if (e instanceof InputValidationError) {
    return new ApiError(422, "input_invalid", e.message, e.fields);
  }
  if (e instanceof MalformedCursorError) {
    return new ApiError(400, "validation_failed", e.message, [{ path: "/cursor", message: e.message }]);
  }
  if (e instanceof MessageTooLargeError) {
    // A body under the API's limit (COMPOZY_BODY_LIMIT may be raised past the bus's) that one bus message
    // cannot carry: no retry helps.
    return new ApiError(
      413,
      "payload_too_large",
      e.message,
      [{ bytes: e.bytes, max_bytes: e.maxBytes }],
      {},
      {
        cause: e,
      },
    );
  }
  if (e instanceof StreamReadError) {
    // The stream kept failing under the read (a loaded or restarting server): worth retrying, not a bug.
    return new ApiError(
      503,
      "history_unavailable",
      `The history cannot be read right now: ${e.message}`,
      [],
      {
        "retry-after": "1",
      },
      { cause: e },
    );
  }
  if (isNatsOutage(e)) {
    return new ApiError(
      503,
      "nats_unavailable",
      `The message bus is unavailable: ${(e as Error).message}`,
      [],
      { "retry-after": "1" },
      { cause: e },
    );
  }
  if (e instanceof HTTPException) return new ApiError(e.status, "http_error", e.message);
  return new ApiError(500, "internal", "Internal error; the server log has the details", [], {}, {
    cause: e,
  });
}

/**
 * True for failures that mean NATS (or the component behind a request) could not be reached; a request the
 * responder refused is the responder's answer, not an outage, so it stays a 500.
 */
function isNatsOutage(e: unknown): boolean {
  if (e instanceof NatsUnavailableError || e instanceof PublishError) return true;
  if (e instanceof RequestError) return e.cause !== undefined;
  return e instanceof natsErrors.ConnectionError || e instanceof natsErrors.TimeoutError ||
    e instanceof natsErrors.NoRespondersError || e instanceof natsErrors.ClosedConnectionError;
}
