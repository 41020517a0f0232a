/**
 * Reading request bodies safely: a size limit enforced while reading (a lying or missing Content-Length
 * cannot get past it), a JSON content type, and a parse error that says where the JSON broke.
 *
 * @module
 */
import type { Context } from "hono";
import type { z } from "zod";
import { ApiError } from "./api_error.ts";
import { DEFAULT_MAX_OUTPUT_DEPTH, jsonTooDeep } from "../pkg/runtime/output_limits.ts";

/** Default request body limit: 1 MiB. */
export const DEFAULT_BODY_LIMIT_BYTES = 1024 * 1024;

/**
 * How deep a body may nest arrays and objects: a tool's output may nest 64 levels (pkg/runtime), and a start
 * wraps the input in `{"input": …}`. An input nested 100,000 levels deep was stored and failed the first task
 * that returned it (outside review B12); it is refused at the door instead, before it is parsed.
 */
export const MAX_BODY_DEPTH = DEFAULT_MAX_OUTPUT_DEPTH + 1;

/**
 * The raw body, at most `limit` bytes; throws a 413 as soon as the limit is passed. A body-less request
 * gives an empty array.
 */
export async function readRawBody(c: Context, limit: number): Promise<Uint8Array> {
  const declared = Number(c.req.header("content-length"));
  if (Number.isFinite(declared) && declared > limit) throw tooLarge(limit);
  const stream = c.req.raw.body;
  if (!stream) return new Uint8Array();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of stream) {
    size += chunk.byteLength;
    if (size > limit) throw tooLarge(limit);
    chunks.push(chunk);
  }
  const body = new Uint8Array(size);
  let offset = 0;
  for (const chunk of chunks) {
    body.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return body;
}

/**
 * Parses a raw body as JSON. An empty body is `undefined` (the route decides whether that is allowed); a
 * non-empty one must be declared `application/json` (or `+json`).
 */
export function parseJsonBody(c: Context, raw: Uint8Array): unknown {
  if (raw.byteLength === 0) return undefined;
  const type = c.req.header("content-type");
  if (!isJsonContentType(type)) {
    throw new ApiError(
      400,
      "unsupported_content_type",
      `Expected Content-Type: application/json, got ${type ? `'${type}'` : "none"}`,
    );
  }
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(raw);
  } catch (e) {
    throw new ApiError(400, "invalid_json", "The body is not valid UTF-8", [], {}, { cause: e });
  }
  if (jsonTooDeep(text, MAX_BODY_DEPTH)) {
    throw new ApiError(
      400,
      "validation_failed",
      `The body nests arrays and objects more than ${MAX_BODY_DEPTH} levels deep`,
      [{ path: "/", message: `nests more than ${MAX_BODY_DEPTH} levels deep` }],
    );
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new ApiError(400, "invalid_json", `The body is not valid JSON: ${(e as Error).message}`, [], {}, {
      cause: e,
    });
  }
}

/** Validates a parsed value with a schema; a failure is a 400 listing each failing field. */
export function validateRequest<S extends z.ZodType>(schema: S, value: unknown, where: string): z.infer<S> {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const details = result.error.issues.map((issue) => ({
    path: "/" + issue.path.map(String).join("/"),
    message: issue.message,
  }));
  const first = details[0];
  throw new ApiError(
    400,
    "validation_failed",
    `Invalid ${where}: ${first.path === "/" ? "" : `${first.path} `}${first.message}`,
    details,
  );
}

function isJsonContentType(type: string | undefined): boolean {
  if (!type) return false;
  const mime = type.split(";")[0].trim().toLowerCase();
  return mime === "application/json" || /^application\/[a-z0-9.+-]+\+json$/.test(mime);
}

function tooLarge(limit: number): ApiError {
  return new ApiError(413, "payload_too_large", `The body is larger than the limit of ${limit} bytes`, [
    { limit_bytes: limit },
  ]);
}
