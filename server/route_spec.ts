/**
 * Routes are declared once, as data: the same declaration registers the Hono handler (which validates the
 * query and body with its schemas) and becomes an operation of the OpenAPI document.
 *
 * @module
 */
import type { Context, Hono } from "hono";
import type { z } from "zod";
import { MAX_ID_LENGTH } from "../engine/domain/ids.ts";
import { ApiError } from "./api_error.ts";
import { parseJsonBody, readRawBody, validateRequest } from "./request_body.ts";

export interface ResponseSpec {
  description: string;
  /** JSON schema of the body; omitted for non-JSON responses. */
  schema?: z.ZodType;
  /** Default `application/json`. */
  contentType?: string;
}

export interface HeaderSpec {
  name: string;
  description: string;
  required?: boolean;
}

export interface BodySpec<B extends z.ZodType> {
  schema: B;
  description: string;
  /** Whether an empty body is refused; default false (an empty body validates as `undefined`). */
  required?: boolean;
  /** Hand the route the raw bytes unparsed (webhooks check a signature over them first). */
  raw?: boolean;
  /** Overrides the app's body limit for this route. */
  limitBytes?: number;
}

/** What a handler receives besides the Hono context: its validated query and body. */
export interface RouteInput<Q extends z.ZodType, B extends z.ZodType> {
  query: z.infer<Q>;
  body: z.infer<B>;
  raw: Uint8Array;
}

export interface RouteSpec<Q extends z.ZodType = z.ZodType, B extends z.ZodType = z.ZodType> {
  method: "get" | "post";
  /** OpenAPI form, e.g. `/api/executions/{exec_id}`. */
  path: string;
  /** Hono form when it differs from the converted `path` (e.g. a parameter spanning segments). */
  honoPath?: string;
  operationId: string;
  summary: string;
  description?: string;
  tag: string;
  /** Whether the API key applies (when one is configured); default true. */
  auth?: boolean;
  /** Whether the route needs NATS: while it is unreachable such routes answer 503 at once. */
  bus?: boolean;
  /**
   * Whether a query the route does not declare is taken and ignored, for callers that are not ours to shape
   * (a webhook's sender, a health probe's or a scraper's cache-buster). Other API routes refuse it.
   */
  ignoresQuery?: boolean;
  /** Path parameters by name, with their description. */
  params?: Record<string, string>;
  query?: Q;
  headers?: HeaderSpec[];
  body?: BodySpec<B>;
  responses: Record<number, ResponseSpec>;
  handler: (c: Context, input: RouteInput<Q, B>) => Promise<Response> | Response;
}

/** Declares a route; a typed identity so that handlers see their inferred query and body types. */
export function route<Q extends z.ZodType = z.ZodUndefined, B extends z.ZodType = z.ZodUndefined>(
  spec: RouteSpec<Q, B>,
): RouteSpec {
  return spec as unknown as RouteSpec;
}

export interface RegisterOptions {
  bodyLimitBytes: number;
  /** How long a body may take to arrive (DEFAULT_BODY_TIMEOUT_MS when unset). */
  bodyTimeoutMs?: number;
  /** Whether NATS is reachable right now. */
  natsConnected: () => boolean;
  /** Middleware run before handlers of routes with `auth` (the API key check). */
  authenticate: (c: Context) => void;
}

/**
 * The longest execution id a route takes (a UUIDv7 in practice). Path parameters have no bound of their own: a
 * 5,000-character signal id was answered 200 and a 10,000-character execution id was echoed in a 10 KB error
 * (outside review B12).
 */
export const MAX_EXEC_ID_LENGTH = 128;
/** A webhook's path may have several segments. */
const MAX_WEBHOOK_PATH_LENGTH = 1024;

/**
 * Each path parameter's bound: an execution id, a webhook's path, and otherwise a definition id (workflow,
 * signal, tool, ...), which YAML bounds at MAX_ID_LENGTH; a longer one could never match anything.
 */
function paramBound(name: string): number {
  if (name === "path") return MAX_WEBHOOK_PATH_LENGTH;
  if (name === "exec_id") return MAX_EXEC_ID_LENGTH;
  return MAX_ID_LENGTH;
}

/** A 400 naming the parameter (not repeating it) when a path parameter is longer than its bound. */
function checkParamLengths(c: Context, spec: RouteSpec): void {
  for (const name of Object.keys(spec.params ?? {})) {
    const bound = paramBound(name);
    const length = (c.req.param(name) ?? "").length;
    if (length > bound) {
      throw new ApiError(
        400,
        "validation_failed",
        `Invalid path: ${name} is ${length} characters long, at most ${bound} allowed`,
        [{ path: `/${name}`, message: `at most ${bound} characters` }],
      );
    }
  }
}

/**
 * The query's parameters, each given once: a repeated one was cut to its first value without a word
 * (`status=RUNNING&status=FAILED` listed RUNNING only: outside review D5), so it is a 400 naming it.
 */
function singleValuedQuery(c: Context): Record<string, string> {
  for (const [name, values] of Object.entries(c.req.queries())) {
    if (values.length > 1) {
      throw new ApiError(
        400,
        "validation_failed",
        `Invalid query: ${name} is given ${values.length} times, at most once allowed`,
        [{ path: `/${name}`, message: "given more than once" }],
      );
    }
  }
  return c.req.query();
}

/**
 * Whether a route refuses every query parameter: an API route that declares no query and does not ignore
 * one (`ignoresQuery`). A parameter it would ignore is a 400 naming it, as on the routes that declare theirs
 * (`?wait=30s` on a re-run was dropped without a word, the re-run answering 202 at once).
 */
export function refusesQuery(spec: RouteSpec): boolean {
  return spec.query === undefined && spec.path.startsWith("/api/") && !spec.ignoresQuery;
}

function refuseQuery(c: Context): void {
  const names = Object.keys(c.req.queries());
  if (names.length === 0) return;
  throw new ApiError(
    400,
    "validation_failed",
    `Invalid query: this route takes no query parameter, got ${names.map((n) => `"${n}"`).join(", ")}`,
    names.map((name) => ({ path: `/${name}`, message: `unknown query parameter "${name}"` })),
  );
}

/** Registers every route on `app`, validating the query and body before the handler runs. */
export function registerRoutes(app: Hono, routes: readonly RouteSpec[], options: RegisterOptions): void {
  for (const spec of routes) {
    const path = spec.honoPath ?? spec.path.replace(/\{([a-z_]+)\}/g, ":$1");
    app.on(spec.method.toUpperCase(), path, async (c) => {
      if (spec.auth !== false) options.authenticate(c);
      if (spec.bus && !options.natsConnected()) {
        throw new ApiError(503, "nats_unavailable", "NATS is unreachable right now; retry shortly", [], {
          "retry-after": "1",
        });
      }
      checkParamLengths(c, spec);
      if (refusesQuery(spec)) refuseQuery(c);
      const query = spec.query ? validateRequest(spec.query, singleValuedQuery(c), "query") : undefined;
      let raw: Uint8Array = new Uint8Array();
      let body: unknown = undefined;
      if (spec.body) {
        raw = await readRawBody(c, spec.body.limitBytes ?? options.bodyLimitBytes, options.bodyTimeoutMs);
        if (!spec.body.raw) {
          body = parseJsonBody(c, raw);
          if (body === undefined && spec.body.required) {
            throw new ApiError(400, "validation_failed", "A JSON body is required", [
              { path: "/", message: "required" },
            ]);
          }
          body = validateRequest(spec.body.schema, body, "body");
        }
      }
      return await spec.handler(c, { query, body, raw });
    });
  }
}
