/**
 * Checks the literal parts of what a task passes to a tool or a sub-workflow (`with:`), and what a trigger
 * passes to its workflow (`input:`), against the callee's input schema: a literal that can never fit fails
 * every run, so it is reported at load, at the value (outside review B11).
 *
 * A string holding a template may render to anything, so nothing is concluded from it: an error is kept only
 * when the value it is about holds no template, or when it is about keys and counts alone (a missing or an
 * unknown field) outside any conditional part of the schema. Agents declare no input schema; their `with`
 * is not checked.
 *
 * @module
 */

import type { Ajv2020, ErrorObject, ValidateFunction } from "ajv/dist/2020.js";
import { jsonSchemaAjv } from "../../../pkg/utils/json_schema.ts";
import addFormatsModule from "ajv-formats";
import { containsTemplate } from "../../../pkg/tplengine/mod.ts";
import type { PathSegment } from "../diagnostics.ts";
import type { Analysis, DiagnosticList } from "./analysis.ts";
import { lookupUse } from "./resolve_use.ts";
import { describe } from "./schema_validation.ts";
import { didYouMean } from "./suggest.ts";
import type { YamlSource } from "./yaml_source.ts";

// ajv-formats is CommonJS: under Deno its default import is the function itself, typed as the module.
const addFormats = addFormatsModule as unknown as typeof addFormatsModule.default;

/** Keywords about an object's keys or an array's length, which templates (values only) cannot change. */
const SHAPE_KEYWORDS = new Set([
  "required",
  "additionalProperties",
  "minProperties",
  "maxProperties",
  "dependentRequired",
  "propertyNames",
  "minItems",
  "maxItems",
]);
/** Parts of a schema that apply depending on values, which a template may change. */
const CONDITIONAL = /\/(if|then|else|anyOf|oneOf|not|contains|dependentSchemas)\//;

/** Who receives the value, and how its schema is checked there. */
interface Callee {
  /** `tool "x"`, `workflow "x"`. */
  name: string;
  schema: unknown;
  /**
   * The runtime checks tool input with the standard formats; the engine checks workflow input without, and
   * fills in its schema's defaults first.
   */
  formats: boolean;
}

export function checkCallInputs(analysis: Analysis, diagnostics: DiagnosticList): void {
  for (const { workflow, source, tasks, triggers } of analysis.workflows) {
    for (const { task, path } of tasks) {
      if (task.type !== "basic") continue;
      const used = lookupUse(analysis.project, workflow, task.use);
      const callee: Callee | undefined = used?.kind === "tool"
        ? { name: `tool "${used.tool.id}"`, schema: used.tool.input, formats: true }
        : used?.kind === "workflow"
        ? {
          name: `workflow "${used.workflow.id}"`,
          schema: used.workflow.config.config?.input,
          formats: false,
        }
        : undefined;
      if (!callee) continue;
      const at = task.with === undefined ? [...path, "use"] : [...path, "with"];
      check(
        diagnostics,
        source,
        at,
        task.with === undefined ? [] : [...path, "with"],
        task.with ?? {},
        callee,
      );
    }
    const own: Callee = {
      name: `workflow "${workflow.id}"`,
      schema: workflow.config.config?.input,
      formats: false,
    };
    for (const { trigger, index: i } of triggers) {
      const inputPath = ["triggers", i, "config", "input"];
      // A webhook without a mapping passes the request body, known only at run time.
      if (trigger.type === "webhook" && trigger.config.input === undefined) continue;
      const input = trigger.config.input ?? {};
      const at = trigger.config.input === undefined ? ["triggers", i, "config"] : inputPath;
      check(diagnostics, source, at, trigger.config.input === undefined ? [] : inputPath, input, own);
    }
  }
}

/**
 * Validates `value` (found at `valuePath`; `[]` when it is implied, e.g. a missing `with`) against the
 * callee's schema; problems about the value as a whole are reported at `at`.
 */
function check(
  diagnostics: DiagnosticList,
  source: YamlSource,
  at: PathSegment[],
  valuePath: PathSegment[],
  value: unknown,
  callee: Callee,
): void {
  if (typeof callee.schema !== "object" || callee.schema === null) return;
  const validate = validatorFor(callee.schema, callee.formats);
  // Ajv writes the defaults into what it checks: a copy, since `value` is the project's own config.
  if (!validate || validate(callee.formats ? value : structuredClone(value))) return;
  const seen = new Set<string>();
  for (const error of validate.errors ?? []) {
    if (error.keyword === "if") continue; // the failing `then`/`else` reports the real problem
    const segments = pointerSegments(error.instancePath, value);
    const target = valueAt(value, segments);
    const shapeOnly = SHAPE_KEYWORDS.has(error.keyword) && !CONDITIONAL.test(error.schemaPath);
    if (holdsTemplate(target) && !shapeOnly) continue;
    const base = valuePath.length === 0 && segments.length === 0 ? at : [...valuePath, ...segments];
    const problem = describeError(error, target, callee, base);
    const key = `${problem.path.join("/")}\u0000${problem.message}`;
    if (seen.has(key)) continue;
    seen.add(key);
    diagnostics.error(source, problem.path, problem.message, problem.at);
  }
}

function describeError(
  error: ErrorObject,
  data: unknown,
  callee: Callee,
  path: PathSegment[],
): { path: PathSegment[]; message: string; at?: "key" } {
  const p = error.params as Record<string, unknown>;
  const where = `the input of ${callee.name}`;
  if (error.keyword === "required") {
    return { path, message: `missing field "${p.missingProperty}" required by ${where}` };
  }
  if (error.keyword === "additionalProperties") {
    const field = String(p.additionalProperty);
    const known = Object.keys((error.parentSchema?.properties ?? {}) as object);
    return {
      path: [...path, field],
      message: `field "${field}" is not in ${where}${didYouMean(field, known)}`,
      at: "key",
    };
  }
  const expected = error.keyword === "enum"
    ? `must be one of ${(p.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(", ")}`
    : error.message ?? error.keyword;
  return { path, message: `does not fit ${where}: ${expected}, found ${describe(data)}` };
}

/** Ajv's JSON Pointer → path segments, list indexes as numbers (so they print as `[2]`). */
function pointerSegments(pointer: string, root: unknown): PathSegment[] {
  if (pointer === "") return [];
  const out: PathSegment[] = [];
  let value = root;
  for (const raw of pointer.slice(1).split("/")) {
    const seg = raw.replaceAll("~1", "/").replaceAll("~0", "~");
    const step = Array.isArray(value) ? Number(seg) : seg;
    out.push(step);
    value = (value as Record<string | number, unknown> | undefined)?.[step];
  }
  return out;
}

function valueAt(root: unknown, path: PathSegment[]): unknown {
  let value = root;
  for (const step of path) value = (value as Record<string | number, unknown> | undefined)?.[step];
  return value;
}

function holdsTemplate(value: unknown): boolean {
  if (typeof value === "string") return containsTemplate(value);
  if (Array.isArray(value)) return value.some(holdsTemplate);
  if (typeof value === "object" && value !== null) return Object.values(value).some(holdsTemplate);
  return false;
}

const ajvs: { formats?: Ajv2020; plain?: Ajv2020 } = {};
/** Validators by schema text and dialect; bounded, since a server reloading edited projects would keep all. */
const validators = new Map<string, ValidateFunction | undefined>();
const MAX_REMEMBERED = 1_000;

/** `undefined` when the schema does not compile (check_embedded_schemas.ts reports it). */
function validatorFor(schema: object, formats: boolean): ValidateFunction | undefined {
  const key = `${formats ? "f" : "p"}${JSON.stringify(schema)}`;
  if (validators.has(key)) return validators.get(key);
  const which = formats ? "formats" : "plain";
  let ajv = ajvs[which];
  if (!ajv) {
    // As the runtime (tool input) and the orchestrator (workflow input, defaults filled in) check: draft
    // 2020-12, not strict.
    ajv = jsonSchemaAjv({
      strict: false,
      allErrors: true,
      addUsedSchema: false,
      verbose: true,
      useDefaults: !formats,
    });
    if (formats) addFormats(ajv);
    ajvs[which] = ajv;
  }
  // An invalid schema is reported by check_embedded_schemas.ts, at its own field; here it checks nothing.
  let validate: ValidateFunction | undefined;
  if (ajv.validateSchema(schema)) {
    try {
      validate = ajv.compile(schema);
    } catch (err) {
      // Valid by the meta-schema yet not compilable (an unresolvable $ref): the same report covers it.
      if (!(err instanceof Error)) throw err;
      validate = undefined;
    }
  }
  if (validators.size >= MAX_REMEMBERED) {
    // Ajv keeps what it compiled too: start both afresh.
    validators.clear();
    ajvs.formats = ajvs.plain = undefined;
  }
  validators.set(key, validate);
  return validate;
}
