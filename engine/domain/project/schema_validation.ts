/**
 * Validates parsed YAML against the generated JSON Schemas in `schemas/` (Ajv, draft 2020-12) and turns every
 * Ajv error into a diagnostic at the field's line and column, worded as "expected …, found …".
 *
 * The schemas are the files users' editors load, so what the editor accepts and what the loader accepts are
 * the same document; `pkg/schemagen` tests keep them in step with the zod definitions.
 *
 * @module
 */

import { Ajv2020, type ErrorObject, type ValidateFunction } from "ajv/dist/2020.js";
import agentSchema from "../../../schemas/agent.json" with { type: "json" };
import projectSchema from "../../../schemas/compozy.json" with { type: "json" };
import toolSchema from "../../../schemas/tool.json" with { type: "json" };
import workflowSchema from "../../../schemas/workflow.json" with { type: "json" };
import type { Diagnostic } from "../diagnostics.ts";
import { DELAY_FORMAT, DURATION_FORMAT, DURATION_PATTERN, durationBoundProblem } from "../duration.ts";
import { SIZE_PATTERN } from "./nats_config.ts";
import { ID_PATTERN, PROJECT_NAME_PATTERN } from "../ids.ts";
import { AGENT_TOOL_PATTERN } from "../mcp/tool_reference.ts";
import { BASE_URL_PATTERN } from "../agent/schema.ts";
import { CONDITION_PATTERN, ITEMS_TEMPLATE_PATTERN, USE_PATTERN } from "../task/schema.ts";
import { WEBHOOK_URL_PATTERN } from "../trigger/schema.ts";
import { didYouMean } from "./suggest.ts";
import { diagnosticAt, type PathSegment, type YamlSource } from "./yaml_source.ts";

export type SchemaKind = "project" | "workflow" | "agent" | "tool";

const SCHEMAS: Record<SchemaKind, object> = {
  project: projectSchema,
  workflow: workflowSchema,
  agent: agentSchema,
  tool: toolSchema,
};

// Keyed by `RegExp#source`, the form zod writes into the schemas (it escapes `/`).
const PATTERN_NAMES: Record<string, string> = Object.fromEntries([
  [ID_PATTERN, "an id matching [a-z0-9][a-z0-9_-]*"],
  [PROJECT_NAME_PATTERN, "a name matching [a-z0-9][a-z0-9-]*"],
  [DURATION_PATTERN, "a duration such as 500ms, 30s, 5m, 1h or 1d"],
  [USE_PATTERN, "tool(id=X), agent(id=X), workflow(id=X), tool(file=./x.yaml) or agent(file=./x.yaml)"],
  [WEBHOOK_URL_PATTERN, "a path such as /weather"],
  [SIZE_PATTERN, "a size in bytes or such as 512MB or 10GB"],
  [AGENT_TOOL_PATTERN, "a tool id, mcp(id=X) or mcp(id=X, tool=Y)"],
  [BASE_URL_PATTERN, "an http:// or https:// URL, or a template"],
  [CONDITION_PATTERN, "true, false or a template such as {{ .tasks.check.output.ok }}"],
  [ITEMS_TEMPLATE_PATTERN, "a list, or a template that renders one such as {{ .workflow.input.list }}"],
].map(([pattern, name]) => [new RegExp(pattern).source, name]));

const validators = new Map<SchemaKind, ValidateFunction>();

function validatorFor(kind: SchemaKind): ValidateFunction {
  let validate = validators.get(kind);
  if (!validate) {
    // One Ajv per schema: each file carries its own $defs under the same names.
    const ajv = new Ajv2020({
      allErrors: true,
      verbose: true,
      strict: true,
      // `if: { not: { required: [x] } }` names properties declared elsewhere, which is the point of it.
      strictRequired: false,
      allowUnionTypes: true,
    });
    for (const format of [DURATION_FORMAT, DELAY_FORMAT]) {
      ajv.addFormat(format, { type: "string", validate: (s: string) => !durationBoundProblem(s, format) });
    }
    validate = ajv.compile(SCHEMAS[kind]);
    validators.set(kind, validate);
  }
  return validate;
}

/** Checks `source.value` against the schema of `kind`; returns one diagnostic per distinct problem. */
export function validateSchema(kind: SchemaKind, source: YamlSource): Diagnostic[] {
  const validate = validatorFor(kind);
  if (validate(source.value)) return [];
  const seen = new Set<string>();
  const out: Diagnostic[] = [];
  for (const error of validate.errors ?? []) {
    const diagnostic = toDiagnostic(error, source);
    if (!diagnostic) continue;
    const key = `${diagnostic.path}\u0000${diagnostic.message}`;
    if (seen.has(key)) continue;
    seen.add(key);
    out.push(diagnostic);
  }
  return out;
}

function toDiagnostic(error: ErrorObject, source: YamlSource): Diagnostic | undefined {
  const path = instancePath(error.instancePath, source.value);
  const p = error.params;
  const found = describe(error.data);
  switch (error.keyword) {
    case "if": // the failing `then` branch reports the real problem
      return undefined;
    case "required": {
      // The only `then: { required }` of the schemas is an agent model's either/or; name the alternative.
      const either = error.schemaPath.endsWith("/then/required")
        ? " (give $model, or provider and model)"
        : "";
      return diagnosticAt(source, path, `missing required field "${p.missingProperty}"${either}`);
    }
    case "additionalProperties": {
      const known = Object.keys((error.parentSchema?.properties ?? {}) as object);
      const field = String(p.additionalProperty);
      return diagnosticAt(source, [...path, field], `unknown field "${field}"${didYouMean(field, known)}`, {
        at: "key",
      });
    }
    case "type": {
      const types = (Array.isArray(p.type) ? p.type : String(p.type).split(",")).map(typeName);
      return diagnosticAt(source, path, `expected ${types.join(" or ")}, found ${found}`);
    }
    case "enum": {
      const allowed = (p.allowedValues as unknown[]).map((v) => JSON.stringify(v));
      const hint = typeof error.data === "string"
        ? didYouMean(error.data, (p.allowedValues as unknown[]).map(String))
        : "";
      return diagnosticAt(source, path, `expected one of ${allowed.join(", ")}, found ${found}${hint}`);
    }
    case "const":
      return diagnosticAt(source, path, `expected ${JSON.stringify(p.allowedValue)}, found ${found}`);
    case "pattern":
      return diagnosticAt(
        source,
        path,
        `expected ${PATTERN_NAMES[p.pattern] ?? `a match of /${p.pattern}/`}, found ${found}`,
      );
    case "minItems":
      return diagnosticAt(
        source,
        path,
        `expected at least ${p.limit} item(s), found ${(error.data as []).length}`,
      );
    case "format": {
      const problem = typeof error.data === "string" ? durationBoundProblem(error.data, p.format) : undefined;
      return diagnosticAt(source, path, problem ?? `expected a value of format ${p.format}, found ${found}`);
    }
    case "maxLength":
      return diagnosticAt(
        source,
        path,
        `expected at most ${p.limit} characters, found ${(error.data as string).length}: ${found}`,
      );
    case "minLength":
      return diagnosticAt(source, path, `expected a non-empty string, found ${found}`);
    case "minimum":
    case "maximum":
    case "exclusiveMinimum":
    case "exclusiveMaximum":
      return diagnosticAt(source, path, `expected a number ${p.comparison} ${p.limit}, found ${found}`);
    default:
      return diagnosticAt(source, path, `${error.message ?? "invalid value"}, found ${found}`);
  }
}

/** Ajv's JSON Pointer → path segments, with list indexes as numbers (so they print as `[2]`). */
function instancePath(pointer: string, root: unknown): PathSegment[] {
  if (pointer === "") return [];
  const path: PathSegment[] = [];
  let value = root;
  for (const raw of pointer.slice(1).split("/")) {
    const seg = raw.replaceAll("~1", "/").replaceAll("~0", "~");
    if (Array.isArray(value)) {
      path.push(Number(seg));
      value = value[Number(seg)];
    } else {
      path.push(seg);
      value = (value as Record<string, unknown> | undefined)?.[seg];
    }
  }
  return path;
}

const TYPE_NAMES: Record<string, string> = {
  object: "a mapping",
  array: "a list",
  string: "a string",
  number: "a number",
  integer: "an integer",
  boolean: "a boolean",
  null: "null",
};

function typeName(type: string): string {
  return TYPE_NAMES[type] ?? type;
}

/** How a found value is quoted in a message: its kind and, for scalars, the value. */
export function describe(value: unknown): string {
  if (value === null || value === undefined) return "null";
  if (Array.isArray(value)) return "a list";
  if (typeof value === "object") return "a mapping";
  if (typeof value === "string") {
    const shown = value.length > 60 ? `${value.slice(0, 57)}...` : value;
    return `string ${JSON.stringify(shown)}`;
  }
  // YAML's .inf and .nan are numbers to JavaScript, not to JSON Schema.
  if (typeof value === "number" && !Number.isFinite(value)) return `${value} (YAML .inf or .nan)`;
  if (typeof value === "number") return `${Number.isInteger(value) ? "integer" : "number"} ${value}`;
  return `${typeof value} ${String(value)}`;
}
