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
import { InexactJsonNumberError, parseExactJson } from "../pkg/utils/exact_json.ts";

/** Default request body limit: 1 MiB. */
export const DEFAULT_BODY_LIMIT_BYTES = 1024 * 1024;

/**
 * How deep a body may nest arrays and objects: a tool's output may nest 64 levels (pkg/runtime), and a start
 * wraps the input in `{"input": …}`. An input nested 100,000 levels deep was stored and failed the first task
 * that returned it (outside review B12); it is refused at the door instead, before it is parsed.
 */
export const MAX_BODY_DEPTH = DEFAULT_MAX_OUTPUT_DEPTH + 1;

/**
 * How long a request's body may take to arrive, from the first read: a client that declares a body and stops
 * sending held a connection and a pending read for ever (outside review D3, a slow-loris). 1 MiB, the default
 * limit, takes about 10 s at 100 KB/s.
 */
export const DEFAULT_BODY_TIMEOUT_MS = 30_000;

/**
 * The raw body, at most `limit` bytes; throws a 413 as soon as the limit is passed, and a 408 when the whole
 * body has not arrived within `timeoutMs` (the rest of it is not read). A body-less request gives an empty
 * array.
 */
export async function readRawBody(
  c: Context,
  limit: number,
  timeoutMs = DEFAULT_BODY_TIMEOUT_MS,
): Promise<Uint8Array> {
  const declared = Number(c.req.header("content-length"));
  if (Number.isFinite(declared) && declared > limit) throw tooLarge(limit);
  refuseContentEncoding(c.req.header("content-encoding"));
  const stream = c.req.raw.body;
  if (!stream) return new Uint8Array();
  const reader = stream.getReader();
  const late = Promise.withResolvers<never>();
  const timer = setTimeout(() => late.reject(bodyTimeout(timeoutMs)), timeoutMs);
  const chunks: Uint8Array[] = [];
  let size = 0;
  try {
    while (true) {
      const { done, value } = await Promise.race([reader.read(), late.promise]);
      if (done) break;
      size += value.byteLength;
      if (size > limit) throw tooLarge(limit);
      chunks.push(value);
    }
  } catch (e) {
    // What is left unread is dropped: the answer does not wait for it.
    reader.cancel().catch(() => {});
    throw e;
  } finally {
    clearTimeout(timer);
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
 * non-empty one must be declared `application/json` (or `+json`), in UTF-8 if it names a charset.
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
  const charset = charsetOf(type!);
  if (charset !== undefined && !UTF8_LABELS.has(charset.toLowerCase())) {
    // Read as UTF-8 all the same, a UTF-16 body failed as "not valid JSON" or, worse, an ASCII-compatible
    // charset such as latin1 was taken with its non-ASCII letters changed (outside review api35).
    throw new ApiError(
      400,
      "unsupported_content_type",
      `Expected a JSON body in UTF-8, got Content-Type charset '${charset.slice(0, 64)}'`,
      [{ header: "Content-Type", charset: charset.slice(0, 64) }],
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
    return parseExactJson(text);
  } catch (e) {
    if (e instanceof InexactJsonNumberError) {
      throw new ApiError(
        400,
        "validation_failed",
        `Invalid body: ${e.message}`,
        [
          { path: e.pointer || "/", message: e.problem },
        ],
        {},
        { cause: e },
      );
    }
    throw new ApiError(400, "invalid_json", `The body is not valid JSON: ${(e as Error).message}`, [], {}, {
      cause: e,
    });
  }
}

/** Validates a parsed value with a schema; a failure is a 400 listing each failing field. */
export function validateRequest<S extends z.ZodType>(schema: S, value: unknown, where: string): z.infer<S> {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const details = result.error.issues.flatMap(issueDetails);
  const first = details[0];
  throw new ApiError(
    400,
    "validation_failed",
    `Invalid ${where}: ${first.path === "/" ? "" : `${first.path} `}${first.message}`,
    details,
  );
}

/**
 * One detail per failing field. An unknown key is named in its own path (`/extra`, not the object's `/`) so
 * a client reading `details[].path` finds the field to drop, as `validate` names an unknown YAML field.
 */
function issueDetails(issue: z.core.$ZodIssue): { path: string; message: string }[] {
  const pointer = (path: PropertyKey[]) =>
    "/" + path.map((segment) => String(segment).replaceAll("~", "~0").replaceAll("/", "~1")).join("/");
  if (issue.code === "unrecognized_keys") {
    return issue.keys.map((key) => ({
      path: pointer([...issue.path, key]),
      message: `unknown field ${JSON.stringify(key)}`,
    }));
  }
  return [{ path: pointer(issue.path), message: issue.message }];
}

function isJsonContentType(type: string | undefined): boolean {
  if (!type) return false;
  const mime = type.split(";")[0].trim().toLowerCase();
  return mime === "application/json" || /^application\/[a-z0-9.+-]+\+json$/.test(mime);
}

/**
 * A body sent compressed (`Content-Encoding: gzip`, `br`, …) is refused naming the coding: read as it came,
 * a gzip body was "not valid UTF-8" and a `br` one that was plain JSON started a workflow (outside review
 * api35). Nothing is decompressed: the size limit counts the bytes that arrive.
 */
function refuseContentEncoding(header: string | undefined): void {
  if (header === undefined) return;
  const codings = header.split(",").map((coding) => coding.trim().toLowerCase()).filter((coding) => coding);
  const unsupported = codings.filter((coding) => coding !== "identity");
  if (unsupported.length === 0) return;
  throw new ApiError(
    400,
    "unsupported_content_encoding",
    `The body must not be compressed: Content-Encoding '${
      unsupported.join(", ").slice(0, 64)
    }' is not supported`,
    [{ header: "Content-Encoding" }],
  );
}

/** The names RFC 8259 and the Encoding standard give UTF-8, compared in lower case. */
const UTF8_LABELS = new Set(["utf-8", "utf8"]);

/** The `charset` parameter of a Content-Type (quoted or not, any case of its name), if it has one. */
function charsetOf(type: string): string | undefined {
  for (const parameter of type.split(";").slice(1)) {
    const at = parameter.indexOf("=");
    if (at < 0 || parameter.slice(0, at).trim().toLowerCase() !== "charset") continue;
    const value = parameter.slice(at + 1).trim();
    return value.length >= 2 && value.startsWith('"') && value.endsWith('"') ? value.slice(1, -1) : value;
  }
  return undefined;
}

function tooLarge(limit: number): ApiError {
  return new ApiError(413, "payload_too_large", `The body is larger than the limit of ${limit} bytes`, [
    { limit_bytes: limit },
  ]);
}

function bodyTimeout(timeoutMs: number): ApiError {
  return new ApiError(408, "request_timeout", `The body did not arrive within ${timeoutMs} ms`, [
    { timeout_ms: timeoutMs },
  ]);
}
