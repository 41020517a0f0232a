/**
 * The engine's failure vocabulary: a task attempt fails with a TaskFailure that says whether another attempt
 * may succeed. Failures convert to and from their wire form (ErrorInfo) here and nowhere else.
 */
import { create } from "@bufbuild/protobuf";
import type { JsonObject } from "@bufbuild/protobuf";
import { type ErrorInfo, ErrorInfoSchema } from "../pkg/pb/common_pb.ts";
import type { ExecutionError } from "./state/execution_state.ts";

export class TaskFailure extends Error {
  override name = "TaskFailure";
  constructor(
    message: string,
    readonly code: string,
    readonly retryable: boolean,
    readonly details?: Record<string, unknown>,
    options?: ErrorOptions & { retryAfterMs?: number },
  ) {
    super(message, options);
    this.retryAfterMs = options?.retryAfterMs ?? 0;
  }
  readonly retryAfterMs: number;
}

/** Turns anything thrown into a TaskFailure; unknown errors are retryable (they may be transient). */
export function toTaskFailure(e: unknown, code = "internal_error"): TaskFailure {
  if (e instanceof TaskFailure) return e;
  const message = e instanceof Error ? e.message : String(e);
  return new TaskFailure(message, code, true, undefined, { cause: e });
}

export function toErrorInfo(failure: TaskFailure): ErrorInfo {
  return create(ErrorInfoSchema, {
    message: failure.message,
    code: failure.code,
    retryable: failure.retryable,
    retryAfterMs: BigInt(failure.retryAfterMs),
    details: failure.details ? (JSON.parse(JSON.stringify(failure.details)) as JsonObject) : undefined,
  });
}

export function fromErrorInfo(info: ErrorInfo | undefined): TaskFailure {
  return new TaskFailure(
    info?.message || "unknown error",
    info?.code || "unknown",
    info?.retryable ?? false,
    info?.details as Record<string, unknown> | undefined,
    { retryAfterMs: Number(info?.retryAfterMs ?? 0n) },
  );
}

export function toExecutionError(info: ErrorInfo | undefined): ExecutionError {
  const error: ExecutionError = { message: info?.message || "unknown error", code: info?.code || "unknown" };
  if (info?.details && Object.keys(info.details).length) error.details = info.details;
  return error;
}
