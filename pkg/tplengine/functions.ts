import { MissingValueError } from "./template_error.ts";

/** A lazily evaluated argument: helpers decide whether, and how, a missing value is tolerated. */
export type Arg = () => unknown;

/** Raises a `TemplateError` at the call site. */
export type Fail = (message: string, cause?: unknown) => never;

/** A helper callable from templates as `name(args)` or `value | name(more args)`. */
export interface TemplateFunction {
  minArgs: number;
  maxArgs: number;
  apply(args: Arg[], fail: Fail): unknown;
}

/** JSON text for `value`; unrepresentable values (cycles, bigints) become a `TemplateError`. */
export function toJson(value: unknown, fail: Fail): string {
  let text: string | undefined;
  try {
    text = JSON.stringify(value);
  } catch (err) {
    fail(`cannot render value as JSON: ${err instanceof Error ? err.message : String(err)}`, err);
  }
  return text ?? fail(`cannot render a ${typeof value} as JSON`);
}

/** Type name for error messages: "list" and "null" read better than "object" to a YAML author. */
export function typeName(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "list";
  return typeof value;
}

const stringOnly = (name: string, transform: (s: string) => string): TemplateFunction => ({
  minArgs: 1,
  maxArgs: 1,
  apply: ([arg], fail) => {
    const value = arg();
    if (typeof value !== "string") fail(`${name}() expects a string, got ${typeName(value)}`);
    return transform(value as string);
  },
});

/** Every helper a template may call; the parser rejects any other name. */
export const FUNCTIONS: ReadonlyMap<string, TemplateFunction> = new Map<string, TemplateFunction>([
  ["default", {
    minArgs: 2,
    maxArgs: 2,
    apply: ([value, fallback]) => {
      let result: unknown;
      try {
        result = value();
      } catch (err) {
        if (err instanceof MissingValueError) return fallback();
        throw err;
      }
      return result === null ? fallback() : result;
    },
  }],
  ["json", { minArgs: 1, maxArgs: 1, apply: ([value], fail) => toJson(value(), fail) }],
  ["len", {
    minArgs: 1,
    maxArgs: 1,
    apply: ([arg], fail) => {
      const value = arg();
      // Code points, not UTF-16 units, so an emoji counts as one character.
      if (typeof value === "string") return [...value].length;
      if (Array.isArray(value)) return value.length;
      if (typeof value === "object" && value !== null) return Object.keys(value).length;
      return fail(`len() expects a string, list or object, got ${typeName(value)}`);
    },
  }],
  ["upper", stringOnly("upper", (s) => s.toUpperCase())],
  ["lower", stringOnly("lower", (s) => s.toLowerCase())],
  ["now", { minArgs: 0, maxArgs: 0, apply: () => new Date().toISOString() }],
]);
