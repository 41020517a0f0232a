/**
 * The one way Compozy builds a JSON Schema validator (Ajv, draft 2020-12) for values that come from users,
 * tools and models: every caller gets the same keyword semantics and the same bounds on their cost.
 *
 * @module
 */
import { Ajv2020, type ErrorObject, type Options } from "ajv/dist/2020.js";

type UniqueItemsCheck = ((unique: boolean, data: unknown[]) => boolean) & { errors?: Partial<ErrorObject>[] };

/**
 * An Ajv instance whose `uniqueItems` costs one pass over the array. Ajv's own check compares every pair of
 * items unless they all share one scalar type: 20,000 small objects (229 KB, well under every size limit)
 * took 96 s, on the event loop of the runtime (a tool's output) or the engine (a workflow's input), and
 * every other call and execution waited (red team 6, S2).
 */
export function jsonSchemaAjv(options: Options): Ajv2020 {
  const ajv = new Ajv2020(options);
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
