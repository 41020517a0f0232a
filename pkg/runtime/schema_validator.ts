/**
 * JSON Schema (2020-12) validation of tool input and output, in the runtime process only: the sandbox
 * never compiles schemas, and each schema is compiled once.
 *
 * Schemas usually arrive inside a command message, so the same schema comes back as a new object on every
 * call; validators are cached by object identity first, then by the schema's JSON text.
 *
 * Bounded work: Ajv has no "stop after N errors", and listing every error of a 1.9-million-item array took
 * seconds and a 50 MB message. So a value is first checked with `allErrors: false` (stops at the first
 * error); only a value small enough ({@linkcode ALL_ERRORS_MAX_BYTES}) is checked again to list its errors,
 * and at most {@linkcode MAX_VIOLATIONS} are kept. A large invalid value reports its first error.
 *
 * @module
 */
import type { ErrorObject, ValidateFunction } from "ajv/dist/2020.js";
import { jsonSchemaAjv } from "../utils/json_schema.ts";
import { addLinearFormats } from "../utils/json_formats.ts";
import { validationBudgetExhausted, validationBudgetLimit } from "../utils/json_schema_budget.ts";

/** One failing field: `path` is like `items[2].name`, or `(root)` for the value itself. */
export interface SchemaViolation {
  path: string;
  message: string;
}

/**
 * Returns the violations of `value` (at most {@linkcode MAX_VIOLATIONS}), or an empty list when it is
 * valid. `bytes` is the size of the value's JSON text: only small values get every error listed; without
 * it, only the first error is reported.
 */
export type Validator = (value: unknown, bytes?: number) => SchemaViolation[];

/** Violations kept per value. */
export const MAX_VIOLATIONS = 20;
/** Largest JSON text (bytes) checked a second time to list all of its errors. */
export const ALL_ERRORS_MAX_BYTES = 64 * 1024;
/** Longest description of a value's violations, and of one path or message in it. */
const MAX_DESCRIPTION_CHARS = 2000;
const MAX_PART_CHARS = 200;

const MAX_CACHED_TEXTS = 1000;

/** The one violation of a value whose check stopped at its bound of `limit` steps (json_schema_budget.ts). */
function tooCostly(limit: number): SchemaViolation {
  return {
    path: "(root)",
    message:
      `took more than ${limit} steps to check against the schema (branches of an anyOf or oneOf that ` +
      "all recurse into the same value double the work per level): refused",
  };
}

/**
 * A cache of compiled validators.
 *
 * @example
 * ```ts
 * import { SchemaCache } from "./schema_validator.ts";
 * const validate = new SchemaCache().get({ type: "object", required: ["city"] });
 * console.assert(validate({})[0].path === "city");
 * ```
 */
export class SchemaCache {
  // `addUsedSchema: false`: two tools may declare different schemas with the same `$id`.
  readonly #firstError = jsonSchemaAjv({ allErrors: false, strict: false, addUsedSchema: false });
  readonly #allErrors = jsonSchemaAjv({ allErrors: true, strict: false, addUsedSchema: false });
  readonly #byObject = new WeakMap<object, Validator>();
  readonly #byText = new Map<string, Validator>();

  constructor() {
    // Formats run in linear time too (a `format: url` string held the runtime 21 s: red team 7 R2).
    addLinearFormats(this.#firstError);
    addLinearFormats(this.#allErrors);
  }

  /** @throws {Error} when the schema itself is invalid (Ajv's message, with the schema path). */
  get(schema: Record<string, unknown>): Validator {
    const known = this.#byObject.get(schema);
    if (known) return known;
    const text = JSON.stringify(schema);
    let validator = this.#byText.get(text);
    if (!validator) {
      validator = this.#toValidator(schema, this.#firstError.compile(schema));
      if (this.#byText.size >= MAX_CACHED_TEXTS) this.#byText.delete(this.#byText.keys().next().value!);
      this.#byText.set(text, validator);
    }
    this.#byObject.set(schema, validator);
    return validator;
  }

  #toValidator(schema: Record<string, unknown>, first: ValidateFunction): Validator {
    let all: ValidateFunction | undefined; // compiled on the first small invalid value
    return (value, bytes = Infinity) => {
      const valid = first(value);
      // Stopped at its step bound: the errors Ajv gathered on the way out say nothing, and listing them all
      // would take a second pass as long. Its "valid" says nothing either: past the bound every check fails,
      // and a failure under a `not` or in a `oneOf`'s other branch is a pass (brk43).
      if (validationBudgetExhausted(this.#firstError)) {
        return [tooCostly(validationBudgetLimit(this.#firstError))];
      }
      if (valid) return [];
      let errors = first.errors ?? [];
      if (bytes <= ALL_ERRORS_MAX_BYTES) {
        all ??= this.#allErrors.compile(schema);
        all(value);
        errors = all.errors ?? errors;
      }
      return errors.slice(0, MAX_VIOLATIONS).map(toViolation);
    };
  }
}

function toViolation(error: ErrorObject): SchemaViolation {
  const segments = error.instancePath.split("/").slice(1).map((s) =>
    s.replace(/~1/g, "/").replace(/~0/g, "~")
  );
  const params = error.params as { missingProperty?: string; additionalProperty?: string };
  const extra = params.missingProperty ?? params.additionalProperty;
  if (extra !== undefined) segments.push(extra);
  const message = error.keyword === "required" ? "is required" : error.message ?? error.keyword;
  return { path: clip(formatPath(segments), MAX_PART_CHARS), message: clip(message, MAX_PART_CHARS) };
}

function clip(text: string, max: number): string {
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

function formatPath(segments: string[]): string {
  if (segments.length === 0) return "(root)";
  return segments.map((s, i) => (/^\d+$/.test(s) ? `[${s}]` : i === 0 ? s : `.${s}`)).join("");
}

/** `city: is required; items[0].qty: must be integer`, at most {@linkcode MAX_DESCRIPTION_CHARS} long. */
export function describeViolations(violations: SchemaViolation[]): string {
  return clip(violations.map((v) => `${v.path}: ${v.message}`).join("; "), MAX_DESCRIPTION_CHARS);
}
