/**
 * Rewrites `oneOf`/`anyOf` unions into `if`/`then` dispatch.
 *
 * A validator facing `oneOf: [nine task shapes]` can only say "matches none of them", with nine sets of
 * errors. Choosing the branch first (by the `type` property, or by the JSON type of the value) lets it report
 * the one error the user made, at the field where they made it. Editors (yaml-language-server) understand
 * `if`/`then` too, so completion still follows the chosen branch.
 *
 * @module
 */

export type JsonSchema = Record<string, unknown>;

const isObject = (v: unknown): v is JsonSchema => typeof v === "object" && v !== null && !Array.isArray(v);

/** Rewrites every dispatchable union in `root` (in place) and returns it. */
export function dispatchUnions(root: JsonSchema): JsonSchema {
  const defs = isObject(root.$defs) ? root.$defs : {};
  const resolve = (s: JsonSchema): JsonSchema => {
    const ref = s.$ref;
    if (typeof ref === "string" && ref.startsWith("#/$defs/")) {
      const target = defs[ref.slice("#/$defs/".length)];
      if (isObject(target)) return target;
    }
    return s;
  };
  // Tagged unions first: a union that contains one (`string | task`) needs its JSON type, `object`.
  for (const rewrite of [byTypeProperty, byJsonType]) {
    walk(root, (node) => {
      for (const keyword of ["oneOf", "anyOf"] as const) {
        const branches = node[keyword];
        if (!Array.isArray(branches) || !branches.every(isObject)) continue;
        const rewritten = rewrite(branches, resolve);
        if (!rewritten) continue;
        delete node[keyword];
        Object.assign(node, rewritten);
      }
    });
  }
  return root;
}

function walk(node: unknown, visit: (n: JsonSchema) => void): void {
  if (Array.isArray(node)) {
    for (const item of node) walk(item, visit);
  } else if (isObject(node)) {
    for (const value of Object.values(node)) walk(value, visit);
    visit(node);
  }
}

/** Object branches told apart by a constant `type` property (tasks, triggers). */
function byTypeProperty(
  branches: JsonSchema[],
  resolve: (s: JsonSchema) => JsonSchema,
): JsonSchema | undefined {
  const tags: { value: string; optional: boolean; branch: JsonSchema }[] = [];
  for (const branch of branches) {
    const target = resolve(branch);
    const props = isObject(target.properties) ? target.properties : undefined;
    const tag = props && isObject(props.type) ? props.type : undefined;
    if (target.type !== "object" || !tag || typeof tag.const !== "string") return undefined;
    const required = Array.isArray(target.required) && target.required.includes("type");
    tags.push({ value: tag.const, optional: !required, branch });
  }
  const defaultTag = tags.find((t) => t.optional);
  const typeProperty: JsonSchema = { enum: tags.map((t) => t.value), description: "Chooses the fields" };
  if (defaultTag) typeProperty.default = defaultTag.value;
  return {
    type: "object",
    properties: { type: typeProperty },
    ...(defaultTag ? {} : { required: ["type"] }),
    allOf: tags.map((t) => ({
      // A branch whose tag is optional also takes objects without `type` (a task without `type` is basic).
      if: {
        type: "object",
        properties: { type: { const: t.value } },
        ...(t.optional ? {} : { required: ["type"] }),
      },
      then: t.branch,
    })),
  };
}

const ANNOTATIONS = new Set(["description", "examples", "default", "title"]);

/** Branches of distinct JSON types (`string | task`, `boolean | string[]`): dispatch on the type. */
function byJsonType(branches: JsonSchema[], resolve: (s: JsonSchema) => JsonSchema): JsonSchema | undefined {
  const types = branches.map((b) => resolve(b).type);
  if (!types.every((t) => typeof t === "string") || new Set(types).size !== types.length) return undefined;
  if (types.includes("integer") && types.includes("number")) return undefined;
  const simple = branches.every((b) => Object.keys(b).every((k) => k === "type" || ANNOTATIONS.has(k)));
  if (simple) return { type: types };
  return {
    type: types,
    allOf: branches.map((branch, i) => ({ if: { type: types[i] }, then: branch })),
  };
}
