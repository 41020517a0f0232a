/**
 * API key authentication: `Authorization: Bearer <key>`, compared in constant time. A missing or malformed
 * header is 401 (the client did not authenticate); a wrong key is 403 (it did, and is refused).
 *
 * @module
 */
import type { Context } from "hono";
import { ApiError } from "./api_error.ts";
import { secretsEqual } from "./constant_time.ts";

/** Returns the check the routes run; with no key configured every request passes. */
export function apiKeyCheck(apiKey: string | undefined): (c: Context) => void {
  if (!apiKey) return () => {};
  return (c) => {
    const header = c.req.header("authorization");
    const match = header ? /^Bearer\s+(\S+)\s*$/i.exec(header) : null;
    if (!match) {
      throw new ApiError(
        401,
        "unauthorized",
        header ? "Expected 'Authorization: Bearer <key>'" : "Missing 'Authorization: Bearer <key>'",
        [],
        { "www-authenticate": 'Bearer realm="compozy"' },
      );
    }
    if (!secretsEqual(match[1], apiKey)) throw new ApiError(403, "forbidden", "The API key is not valid");
  };
}
