/**
 * JSON Schema (2020-12) validation of tool input and output, in the runtime process only: the sandbox
 * never compiles schemas, and each schema is compiled once.
 *
 * Schemas usually arrive inside a command message, so the same schema comes back as a new object on every
 * call; validators are cached by object identity first, then by the schema's JSON text.
 *
 * @module
 */
import { Ajv2020, type ErrorObject, type ValidateFunction } from "ajv/dist/2020.js";
import addFormatsModule from "ajv-formats";

/** One failing field: `path` is like `items[2].name`, or `(root)` for the value itself. */
export interface SchemaViolation {
  path: string;
  message: string;
}

/** Returns the violations of `value`, or an empty list when it is valid. */
export type Validator = (value: unknown) => SchemaViolation[];

// ajv-formats is CommonJS: under Deno its default import is the function itself, typed as the module.
const addFormats = addFormatsModule as unknown as typeof addFormatsModule.default;
const MAX_CACHED_TEXTS = 1000;

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
  readonly #ajv = new Ajv2020({ allErrors: true, strict: false, addUsedSchema: false });
  readonly #byObject = new WeakMap<object, Validator>();
  readonly #byText = new Map<string, Validator>();

  constructor() {
    addFormats(this.#ajv);
  }

  /** @throws {Error} when the schema itself is invalid (Ajv's message, with the schema path). */
  get(schema: Record<string, unknown>): Validator {
    const known = this.#byObject.get(schema);
    if (known) return known;
    const text = JSON.stringify(schema);
    let validator = this.#byText.get(text);
    if (!validator) {
      validator = toValidator(this.#ajv.compile(schema));
      if (this.#byText.size >= MAX_CACHED_TEXTS) this.#byText.delete(this.#byText.keys().next().value!);
      this.#byText.set(text, validator);
    }
    this.#byObject.set(schema, validator);
    return validator;
  }
}

function toValidator(validate: ValidateFunction): Validator {
  return (value) => (validate(value) ? [] : (validate.errors ?? []).map(toViolation));
}

function toViolation(error: ErrorObject): SchemaViolation {
  const segments = error.instancePath.split("/").slice(1).map((s) =>
    s.replace(/~1/g, "/").replace(/~0/g, "~")
  );
  const params = error.params as { missingProperty?: string; additionalProperty?: string };
  const extra = params.missingProperty ?? params.additionalProperty;
  if (extra !== undefined) segments.push(extra);
  const message = error.keyword === "required" ? "is required" : error.message ?? error.keyword;
  return { path: formatPath(segments), message };
}

function formatPath(segments: string[]): string {
  if (segments.length === 0) return "(root)";
  return segments.map((s, i) => (/^\d+$/.test(s) ? `[${s}]` : i === 0 ? s : `.${s}`)).join("");
}

/** `city: is required; items[0].qty: must be integer` */
export function describeViolations(violations: SchemaViolation[]): string {
  return violations.map((v) => `${v.path}: ${v.message}`).join("; ");
}
