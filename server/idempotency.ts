/**
 * The `Idempotency-Key` header. Keys are scoped (by workflow for API starts, by path for webhooks) before
 * they reach the engine, so that one caller's key can never return another workflow's execution.
 *
 * @module
 */
import type { Context } from "hono";
import { ApiError } from "./api_error.ts";
import { IDEMPOTENCY_KEY_PATTERN } from "./schemas.ts";

export const IDEMPOTENCY_HEADER = "Idempotency-Key";

/** The scoped key of the request, or undefined without the header; a malformed key is a 400. */
export function scopedIdempotencyKey(c: Context, scope: string): string | undefined {
  const key = c.req.header(IDEMPOTENCY_HEADER);
  if (key === undefined) return undefined;
  if (!IDEMPOTENCY_KEY_PATTERN.test(key)) {
    throw new ApiError(
      400,
      "invalid_header",
      `${IDEMPOTENCY_HEADER} must be 1 to 200 printable ASCII characters without spaces`,
      [{ header: IDEMPOTENCY_HEADER }],
    );
  }
  return `${scope}:${key}`;
}
