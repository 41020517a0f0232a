/**
 * The one way Compozy builds a JSON Schema validator (Ajv, draft 2020-12) for values that come from users,
 * tools and models: every caller gets the same keyword semantics and the same bounds on their cost.
 *
 * @module
 */
import { Ajv2020, type ErrorObject, type Options } from "ajv/dist/2020.js";
import { RE2JS } from "re2js";
import ucs2lengthModule from "ajv/dist/runtime/ucs2length.js";
import {
  addValidationBudget,
  budgetError,
  chargeSteps,
  countNodes,
  stepAtEntry,
  stringSteps,
} from "./json_schema_budget.ts";

// Ajv's runtime modules are CommonJS: under Deno their default import is the module's exports object.
const ucs2length = (ucs2lengthModule as unknown as { default: (text: string) => number }).default;

/**
 * Steps `uniqueItems` takes per member of its array: serializing a member canonically costs about four
 * entries into a compiled function.
 */
const UNIQUE_STEPS_PER_NODE = 4;

type Check<T, D> = ((schema: T, data: D) => boolean) & { errors?: Partial<ErrorObject>[] };

/**
 * Ajv's regular-expression engine for `pattern` and `patternProperties`: RE2's linear-time matching (npm
 * `re2js`, pure JavaScript), not JavaScript's backtracking engine. Schemas are the author's, but the values
 * they check are not (a tool's output, a workflow's input), and a pattern with nested quantifiers held the
 * runtime's thread for any string that almost matched: `^(a+)+$` against 28 `a`s and a `!` took 30 s, every
 * other call waiting (red team 5). A pattern RE2 cannot run (a backreference, a lookaround) keeps
 * JavaScript's engine: the documented limit. RE2 differs from JavaScript in small ways: `\s` is ASCII white
 * space only, `.` matches `\r`, `\u2028` and `\u2029`.
 */
function linearRegExp(budgeted: { ajv?: object }) {
  return Object.assign((pattern: string, flags: string) => {
    let re: RE2JS;
    try {
      re = RE2JS.compile(RE2JS.translateRegExp(pattern));
    } catch {
      return new RegExp(pattern, flags);
    }
    // A refused test fails the pattern; the validation then reports its budget (json_schema_budget.ts).
    const test = (text: string) => chargeSteps(budgeted.ajv!, stringSteps(text)) && re.test(text);
    // Ajv keys its compiled patterns by `toString()`: as a RegExp's, or every pattern would share the first.
    return { test, toString: () => `/${pattern}/${flags}` };
  }, { code: "re2js" });
}

/**
 * An Ajv instance whose `pattern`s run in linear time (above) and whose `uniqueItems` costs one pass over
 * the array. Ajv's own `uniqueItems` compares every pair of items unless they all share one scalar type:
 * 20,000 small objects (229 KB, well under every size limit) took 96 s, on the event loop of the runtime (a
 * tool's output) or the engine (a workflow's input), and every other call and execution waited (red team 6,
 * S2).
 *
 * Each validation is bounded in steps (json_schema_budget.ts): a recursive `anyOf` doubled its work per level
 * of the value.
 *
 * It writes nothing to the console (`logger: false`): Ajv's lines ("unknown format … ignored in schema")
 * came out raw in the engine's and the runtime's output at a schema's first use, where `compozy validate`
 * and the load already report such a schema as a warning at its field (check_embedded_schemas.ts).
 */
export function jsonSchemaAjv(options: Options): Ajv2020 {
  // Patterns compile before the instance exists, and test with its budget.
  const budgeted: { ajv?: object } = {};
  const ajv = new Ajv2020({
    logger: false,
    ...options,
    code: { ...options.code, regExp: linearRegExp(budgeted), process: stepAtEntry },
  });
  addValidationBudget(ajv);
  budgeted.ajv = ajv;
  const uniqueItems: Check<boolean, unknown[]> = (unique, data) => {
    if (!unique) return true;
    if (!chargeSteps(ajv, UNIQUE_STEPS_PER_NODE * countNodes(data))) {
      uniqueItems.errors = [budgetError(ajv)];
      return false;
    }
    const duplicate = firstDuplicate(data);
    if (!duplicate) return true;
    const [i, j] = duplicate;
    uniqueItems.errors = [{
      keyword: "uniqueItems",
      params: { i: j, j: i },
      message: `must NOT have duplicate items (items ## ${i} and ${j} are identical)`,
    }];
    return false;
  };
  ajv.removeKeyword("uniqueItems");
  ajv.addKeyword({
    keyword: "uniqueItems",
    type: "array",
    schemaType: "boolean",
    errors: true,
    validate: uniqueItems,
  });
  replaceLimit(
    ajv,
    "string",
    "maxLength",
    (limit, text: string) => ucs2length(text) <= limit,
    "more",
    "characters",
  );
  replaceLimit(
    ajv,
    "string",
    "minLength",
    (limit, text: string) => ucs2length(text) >= limit,
    "fewer",
    "characters",
  );
  replaceLimit(
    ajv,
    "object",
    "maxProperties",
    (limit, data: object) => keyCount(data) <= limit,
    "more",
    "properties",
  );
  replaceLimit(
    ajv,
    "object",
    "minProperties",
    (limit, data: object) => keyCount(data) >= limit,
    "fewer",
    "properties",
  );
  return ajv;
}

/**
 * Replaces Ajv's `keyword` (a length or a count of properties, read whole at each check: json_schema_budget.ts)
 * with one that takes its member's steps first, with Ajv's error.
 */
function replaceLimit<D>(
  ajv: Ajv2020,
  type: "string" | "object",
  keyword: string,
  within: (limit: number, data: D) => boolean,
  side: "more" | "fewer",
  unit: string,
): void {
  const check: Check<number, D> = (limit, data) => {
    const steps = typeof data === "string" ? stringSteps(data) : 1 + KEY_STEPS * keyCount(data as object);
    if (!chargeSteps(ajv, steps)) {
      check.errors = [budgetError(ajv)];
      return false;
    }
    if (within(limit, data)) return true;
    check.errors = [{ keyword, params: { limit }, message: `must NOT have ${side} than ${limit} ${unit}` }];
    return false;
  };
  ajv.removeKeyword(keyword);
  ajv.addKeyword({ keyword, type, schemaType: "number", errors: true, validate: check });
}

/** Steps per key of `minProperties`/`maxProperties`: listing an object's keys allocates each. */
const KEY_STEPS = 4;

function keyCount(data: object): number {
  return Object.keys(data).length;
}

/** The indexes of the first pair of equal items (JSON equality: key order does not count), if any. */
export function firstDuplicate(items: readonly unknown[]): [number, number] | undefined {
  const seen = new Map<string, number>();
  for (let j = 0; j < items.length; j++) {
    const key = canonicalJson(items[j]);
    const i = seen.get(key);
    if (i !== undefined) return [i, j];
    seen.set(key, j);
  }
  return undefined;
}

function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, v) => {
    if (v === null || typeof v !== "object" || Array.isArray(v)) return v;
    const sorted: Record<string, unknown> = {};
    for (const key of Object.keys(v).sort()) sorted[key] = (v as Record<string, unknown>)[key];
    return sorted;
  }) ?? "undefined";
}
