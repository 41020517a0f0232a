/**
 * Secret comparisons that take the same time whatever the input, so that an attacker cannot learn a key or
 * a signature one byte at a time from response times.
 *
 * @module
 */
import { createHash, createHmac, timingSafeEqual } from "node:crypto";

/**
 * Compares two secrets in constant time. Both are hashed first, so that their lengths leak nothing either.
 *
 * @example
 * ```ts
 * secretsEqual("key", "key"); // true
 * ```
 */
export function secretsEqual(given: string, expected: string): boolean {
  const a = createHash("sha256").update(given).digest();
  const b = createHash("sha256").update(expected).digest();
  return timingSafeEqual(a, b);
}

/** `sha256=<hex>` of the raw body with `secret`, as webhook callers send it in `X-Compozy-Signature`. */
export function signBody(secret: string, body: Uint8Array): string {
  return `sha256=${createHmac("sha256", secret).update(body).digest("hex")}`;
}

/** Checks an `X-Compozy-Signature` header against the raw body, in constant time. */
export function signatureMatches(secret: string, body: Uint8Array, header: string | undefined): boolean {
  if (!header) return false;
  return secretsEqual(header.trim().toLowerCase(), signBody(secret, body));
}
