/**
 * The OpenAPI 3.1 document, built from the route declarations and their zod schemas (JSON Schema 2020-12 is
 * OpenAPI 3.1's schema dialect, so the schemas go in as they are).
 *
 * @module
 */
import { z } from "zod";
import { refusesQuery, type ResponseSpec, type RouteSpec } from "./route_spec.ts";
import { ErrorBodySchema } from "./schemas.ts";

type JsonObject = Record<string, unknown>;

export interface OpenApiInfo {
  version: string;
  /** Whether the API key is enforced; documented as a bearer security scheme either way. */
  apiKeyRequired: boolean;
}

/** The OpenAPI 3.1 document of `routes`. */
export function buildOpenApi(routes: readonly RouteSpec[], info: OpenApiInfo): JsonObject {
  const components: Record<string, unknown> = {};
  const convert = (schema: z.ZodType, io: "input" | "output") => toSchema(schema, io, components);
  const paths: Record<string, Record<string, unknown>> = {};
  for (const spec of routes) {
    const operation: JsonObject = {
      operationId: spec.operationId,
      summary: spec.summary,
      tags: [spec.tag],
      parameters: parameters(spec, convert),
      responses: responses(spec, convert),
    };
    if (spec.description) operation.description = spec.description;
    if (spec.auth === false) operation.security = [];
    if (spec.body) {
      operation.requestBody = {
        description: spec.body.description,
        required: spec.body.required ?? false,
        content: { "application/json": { schema: convert(spec.body.schema, "input") } },
      };
    }
    (paths[spec.path] ??= {})[spec.method] = operation;
  }
  return {
    openapi: "3.1.0",
    info: {
      title: "Compozy API",
      version: info.version,
      description: "Start, follow and control Compozy workflow executions." +
        (info.apiKeyRequired
          ? " Every route but health and webhooks needs `Authorization: Bearer <key>`."
          : ""),
    },
    paths,
    components: {
      schemas: components,
      securitySchemes: { apiKey: { type: "http", scheme: "bearer", description: "COMPOZY_API_KEY" } },
    },
    security: [{ apiKey: [] }],
  };
}

function parameters(spec: RouteSpec, convert: (s: z.ZodType, io: "input") => unknown): unknown[] {
  const list: unknown[] = [];
  for (const [name, description] of Object.entries(spec.params ?? {})) {
    list.push({ name, in: "path", required: true, description, schema: { type: "string" } });
  }
  if (spec.query instanceof z.ZodObject) {
    for (const [name, field] of Object.entries(spec.query.shape as Record<string, z.ZodType>)) {
      const schema = convert(field, "input") as JsonObject;
      list.push({
        name,
        in: "query",
        required: !field.safeParse(undefined).success,
        description: schema.description,
        schema,
      });
    }
  }
  for (const header of spec.headers ?? []) {
    list.push({
      name: header.name,
      in: "header",
      required: header.required ?? false,
      description: header.description,
      schema: { type: "string" },
    });
  }
  return list;
}

/**
 * The answers every route of a kind can give, whatever its own list says: a client generated from the
 * document must expect them (a route declares its own wording, which wins).
 */
function sharedResponses(spec: RouteSpec): Record<number, ResponseSpec> {
  const shared: Record<number, ResponseSpec> = {};
  if (spec.params || spec.query || spec.body || spec.headers || refusesQuery(spec)) {
    shared[400] = { description: "A malformed parameter, query, header or body (`details` names it)" };
  }
  if (spec.auth !== false) {
    shared[401] = { description: "`Authorization: Bearer <key>` is missing (when an API key is set)" };
  }
  shared[403] = {
    description: spec.auth !== false
      ? "The API key is wrong, or a non-loopback `Host` on a keyless loopback server"
      : "A non-loopback `Host` on a keyless loopback server",
  };
  if (spec.body) shared[413] = { description: "The body is larger than the limit" };
  if (spec.bus) shared[503] = { description: "NATS or the engine is unavailable (`Retry-After`)" };
  return shared;
}

function responses(spec: RouteSpec, convert: (s: z.ZodType, io: "output") => unknown): JsonObject {
  const out: JsonObject = {};
  const all = { ...sharedResponses(spec), ...spec.responses };
  const ordered = Object.entries(all).sort(([a], [b]) => Number(a) - Number(b));
  for (const [status, response] of ordered) {
    const contentType = response.contentType ?? "application/json";
    const schema = response.schema
      ? convert(response.schema, "output")
      : Number(status) >= 400
      ? convert(ErrorBodySchema, "output")
      : undefined;
    out[status] = {
      description: response.description,
      ...(schema || response.contentType ? { content: { [contentType]: schema ? { schema } : {} } } : {}),
    };
  }
  return out;
}

/**
 * Converts one zod schema, moving its named sub-schemas (`.meta({ id })`) into `components.schemas` and
 * pointing the references there.
 */
function toSchema(schema: z.ZodType, io: "input" | "output", components: Record<string, unknown>): unknown {
  const json = z.toJSONSchema(schema, { target: "draft-2020-12", io, unrepresentable: "any" }) as JsonObject;
  delete json.$schema;
  const defs = (json.$defs ?? {}) as Record<string, unknown>;
  delete json.$defs;
  const relink = (value: unknown) =>
    JSON.parse(JSON.stringify(value).replaceAll('"#/$defs/', '"#/components/schemas/'));
  for (const [name, def] of Object.entries(defs)) components[name] ??= relink(def);
  const id = schema.meta()?.id;
  if (typeof id === "string") {
    const own = { ...json };
    delete own.id;
    components[id] ??= relink(own);
    return { $ref: `#/components/schemas/${id}` };
  }
  return relink(json);
}
