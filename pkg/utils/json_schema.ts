/**
 * The one way Compozy builds a JSON Schema validator (Ajv, draft 2020-12) for values that come from users,
 * tools and models: every caller gets the same keyword semantics and the same bounds on their cost.
 *
 * @module
 */
import { Ajv2020, type ErrorObject, type Options } from "ajv/dist/2020.js";
import { RE2JS } from "re2js";
import { addValidationBudget, stepAtEntry } from "./json_schema_budget.ts";

type UniqueItemsCheck = ((unique: boolean, data: unknown[]) => boolean) & { errors?: Partial<ErrorObject>[] };

/**
 * Ajv's regular-expression engine for `pattern` and `patternProperties`: RE2's linear-time matching (npm
 * `re2js`, pure JavaScript), not JavaScript's backtracking engine. Schemas are the author's, but the values
 * they check are not (a tool's output, a workflow's input), and a pattern with nested quantifiers held the
 * runtime's thread for any string that almost matched: `^(a+)+$` against 28 `a`s and a `!` took 30 s, every
 * other call waiting (red team 5). A pattern RE2 cannot run (a backreference, a lookaround) keeps
 * JavaScript's engine: the documented limit. RE2 differs from JavaScript in small ways: `\s` is ASCII white
 * space only, `.` matches `\r`, `\u2028` and `\u2029`.
 */
const linearRegExp = Object.assign((pattern: string, flags: string) => {
  let re: RE2JS;
  try {
    re = RE2JS.compile(RE2JS.translateRegExp(pattern));
  } catch {
    return new RegExp(pattern, flags);
  }
  // Ajv keys its compiled patterns by `toString()`: as a RegExp's, or every pattern would share the first.
  return { test: (text: string) => re.test(text), toString: () => `/${pattern}/${flags}` };
}, { code: "re2js" });

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
  const ajv = new Ajv2020({
    logger: false,
    ...options,
    code: { ...options.code, regExp: linearRegExp, process: stepAtEntry },
  });
  addValidationBudget(ajv);
  const uniqueItems: UniqueItemsCheck = (unique, data) => {
    if (!unique) return true;
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
  return ajv;
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
