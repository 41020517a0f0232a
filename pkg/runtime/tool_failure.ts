/**
 * The closed vocabulary of ways a tool call can fail, and whether retrying the same call may succeed.
 *
 * A failure is "retryable" when running the same input again can plausibly give a different outcome
 * (the tool threw, ran out of time, its process died). It is not retryable when the same input must fail
 * the same way (schema violations, refused imports, permissions the config does not grant). The task's
 * retry policy has the last word; this only says whether retrying is worth it.
 *
 * @module
 */

export type ToolFailureCode =
  | "tool_input_invalid"
  | "tool_output_invalid"
  | "tool_threw"
  | "tool_timeout"
  | "tool_crashed"
  | "tool_memory_exceeded"
  | "tool_writes_exceeded"
  | "tool_cpu_exceeded"
  | "tool_output_too_large"
  | "tool_permission_denied"
  | "tool_module_invalid"
  | "tool_import_refused"
  | "tool_canceled";

const RETRYABLE: Readonly<Record<ToolFailureCode, boolean>> = {
  tool_input_invalid: false,
  tool_output_invalid: false,
  tool_threw: true,
  tool_timeout: true,
  tool_crashed: true,
  tool_memory_exceeded: false,
  // The same call writes as much again.
  tool_writes_exceeded: false,
  // The same call starts as much parallel work again.
  tool_cpu_exceeded: false,
  tool_output_too_large: false,
  tool_permission_denied: false,
  tool_module_invalid: false,
  tool_import_refused: false,
  // Only the engine cancels a call (its task was given up): running it again is not wanted.
  tool_canceled: false,
};

/** Options of {@linkcode ToolFailure}. */
export interface ToolFailureOptions {
  /** Structured, JSON-serialisable context: failing field paths, exit code, limits... */
  details?: unknown;
  /** The error that caused this failure (for `tool_threw`, the tool's own error). */
  cause?: unknown;
}

/**
 * A failed tool call. `run()` never throws it; it is returned in `{ ok: false, failure }`.
 *
 * @example
 * ```ts
 * import { ToolFailure } from "./tool_failure.ts";
 * const failure = new ToolFailure("tool_timeout", 'Tool "weather" timed out after 1000 ms');
 * console.assert(failure.retryable);
 * ```
 */
export class ToolFailure extends Error {
  override readonly name = "ToolFailure";
  readonly code: ToolFailureCode;
  readonly retryable: boolean;
  readonly details?: unknown;

  constructor(code: ToolFailureCode, message: string, options: ToolFailureOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.retryable = RETRYABLE[code];
    if (options.details !== undefined) this.details = options.details;
  }
}
