/**
 * One failure vocabulary for the engine and the runtime: every failure (a task's, a tool call's, an agent
 * call's) has this shape, and converts to and from its wire form, `ErrorInfo`, here and nowhere else.
 */
import { create, type JsonObject } from "@bufbuild/protobuf";
import { type ErrorInfo, ErrorInfoSchema } from "../pb/common_pb.ts";

/** What every failure says: a stable code, a message, whether another attempt may succeed, and context. */
export interface FailureShape {
  readonly code: string;
  readonly message: string;
  readonly retryable: boolean;
  /** Structured, JSON-serialisable context (failing fields, limits, a child's id...). */
  readonly details?: unknown;
  /** A delay the failing party asked for (e.g. an HTTP retry-after); 0 or absent when none. */
  readonly retryAfterMs?: number;
}

/** The options of a failure's constructor (TaskFailure; ToolFailure and AgentFailure take the same fields). */
export interface FailureOptions {
  code: string;
  message: string;
  retryable: boolean;
  details?: Record<string, unknown>;
  retryAfterMs?: number;
  cause?: unknown;
}

/** The wire form of any failure. Details that are not a JSON object are wrapped as `{ value }`. */
export function toErrorInfo(failure: FailureShape): ErrorInfo {
  return create(ErrorInfoSchema, {
    message: failure.message,
    code: failure.code,
    retryable: failure.retryable,
    retryAfterMs: BigInt(Math.max(0, Math.round(failure.retryAfterMs ?? 0))),
    details: jsonObject(failure.details),
  });
}

/** The options of a failure read back from its wire form (a missing ErrorInfo is an unknown failure). */
export function failureOptionsOf(info: ErrorInfo | undefined): FailureOptions {
  return {
    message: info?.message || "unknown error",
    code: info?.code || "unknown",
    retryable: info?.retryable ?? false,
    details: info?.details && Object.keys(info.details).length
      ? info.details as Record<string, unknown>
      : undefined,
    retryAfterMs: Number(info?.retryAfterMs ?? 0n),
  };
}

function jsonObject(value: unknown): JsonObject | undefined {
  if (value === undefined || value === null) return undefined;
  const json = JSON.parse(JSON.stringify(value));
  return typeof json === "object" && json !== null && !Array.isArray(json) ? json : { value: json };
}
