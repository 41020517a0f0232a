/**
 * The engine's failure vocabulary: a task attempt fails with a TaskFailure that says whether another attempt
 * may succeed. Failures convert to and from their wire form (ErrorInfo) here and nowhere else.
 */
import type { ErrorInfo } from "../pkg/pb/common_pb.ts";
import { MessageTooLargeError } from "../pkg/nats/errors.ts";
import {
  type FailureOptions,
  failureOptionsOf,
  type FailureShape,
  toErrorInfo,
} from "../pkg/utils/failure.ts";
import type { ExecutionError } from "./state/execution_state.ts";

/** A failed task attempt. Its shape (and wire form) is the one every failure shares (pkg/utils/failure.ts). */
export class TaskFailure extends Error implements FailureShape {
  override name = "TaskFailure";
  readonly code: string;
  readonly retryable: boolean;
  readonly details?: Record<string, unknown>;
  readonly retryAfterMs: number;

  constructor(options: FailureOptions) {
    super(options.message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = options.code;
    this.retryable = options.retryable;
    if (options.details !== undefined) this.details = options.details;
    this.retryAfterMs = options.retryAfterMs ?? 0;
  }
}

/** Turns anything thrown into a TaskFailure; a failure of the shared shape keeps its fields, unknown errors are retryable (they may be transient). */
export function toTaskFailure(e: unknown, code = "internal_error"): TaskFailure {
  if (e instanceof TaskFailure) return e;
  // An outcome too large to record (a collection, an aggregate or the workflow's outputs combining large
  // results): the same outcome would fail the same way, so it is not retried.
  if (e instanceof MessageTooLargeError) {
    return new TaskFailure({
      code: "output_too_large",
      message: e.message,
      retryable: false,
      details: { bytes: e.bytes, max_bytes: e.maxBytes },
      cause: e,
    });
  }
  if (isFailure(e)) {
    return new TaskFailure({
      code: e.code,
      message: e.message,
      retryable: e.retryable,
      details: e.details as Record<string, unknown> | undefined,
      retryAfterMs: e.retryAfterMs,
      cause: e,
    });
  }
  const message = e instanceof Error ? e.message : String(e);
  return new TaskFailure({ code, message, retryable: true, cause: e });
}

function isFailure(e: unknown): e is FailureShape {
  const f = e as FailureShape | null;
  return e instanceof Error && typeof f?.code === "string" && typeof f.retryable === "boolean";
}

export { toErrorInfo };

export function fromErrorInfo(info: ErrorInfo | undefined): TaskFailure {
  return new TaskFailure(failureOptionsOf(info));
}

export function toExecutionError(info: ErrorInfo | undefined): ExecutionError {
  const error: ExecutionError = { message: info?.message || "unknown error", code: info?.code || "unknown" };
  if (info?.details && Object.keys(info.details).length) error.details = info.details;
  return error;
}
