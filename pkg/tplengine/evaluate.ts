import { type Fail, FUNCTIONS, toJson, typeName } from "./functions.ts";
import type { Node, Part } from "./parser.ts";
import { MissingValueError, TemplateError } from "./template_error.ts";

/** Deepest object/list nesting `==` walks before giving up (context data may be cyclic). */
const MAX_COMPARE_DEPTH = 1000;

// These names reach an object's prototype machinery; a template reading them is never legitimate.
const FORBIDDEN = new Set(["__proto__", "constructor", "prototype"]);
const INDEX = /^(?:0|[1-9]\d*)$/;
const MISSING = Symbol("missing");

interface Scope {
  source: string;
  ctx: unknown;
}

/**
 * Renders parsed `parts` against `ctx`: one lone expression keeps its value's type; otherwise strings are
 * inserted as they are and every other value as JSON.
 */
export function renderParts(parts: Part[], source: string, ctx: unknown): unknown {
  const scope = { source, ctx };
  if (parts.length === 1 && parts[0].type === "expr") return evaluate(parts[0].node, scope);
  let out = "";
  for (const part of parts) {
    if (part.type === "text") {
      out += part.text;
      continue;
    }
    const value = evaluate(part.node, scope);
    out += typeof value === "string" ? value : toJson(value, failAt(scope, part.node.pos));
  }
  return out;
}

function evaluate(node: Node, scope: Scope): unknown {
  switch (node.type) {
    case "literal":
      return node.value;
    case "path":
      return resolve(node.segments, node.pos, scope);
    case "not":
      return !truthy(evaluate(node.operand, scope));
    case "logical": {
      // Short-circuits like JS, but always yields a boolean so conditions never leak operand values.
      const want = node.op === "||";
      for (const operand of node.operands) if (truthy(evaluate(operand, scope)) === want) return want;
      return !want;
    }
    case "compare":
      return compare(
        node.op,
        evaluate(node.left, scope),
        evaluate(node.right, scope),
        failAt(scope, node.pos),
      );
    case "call": {
      const args = node.args.map((arg) => () => evaluate(arg, scope));
      return FUNCTIONS.get(node.name)!.apply(args, failAt(scope, node.pos));
    }
  }
}

/**
 * JS truthiness, except that the strings "true" and "false" are the booleans they name, as `if`, `filter` and
 * a wait's `condition` read them: `.env` values are strings, so `{{ !.env.SKIP }}` with `SKIP: "false"` read
 * the non-empty string as true and skipped the task, where `{{ .env.SKIP }}` alone reads false (outside review
 * eng40).
 */
function truthy(value: unknown): boolean {
  if (value === "false") return false;
  if (value === "true") return true;
  return Boolean(value);
}

function compare(op: string, left: unknown, right: unknown, fail: Fail): boolean {
  if (op === "==") return deepEqual(left, right, 0, fail);
  if (op === "!=") return !deepEqual(left, right, 0, fail);
  const comparable = typeof left === typeof right && (typeof left === "number" || typeof left === "string");
  if (!comparable) fail(`cannot compare ${typeName(left)} with ${typeName(right)} using "${op}"`);
  const [l, r] = [left as number | string, right as number | string];
  if (op === "<") return l < r;
  if (op === "<=") return l <= r;
  if (op === ">") return l > r;
  return l >= r;
}

/** Structural equality over what templates can see: keys whose values a path could not read are ignored. */
function deepEqual(a: unknown, b: unknown, depth: number, fail: Fail): boolean {
  if (a === b) return true;
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (depth > MAX_COMPARE_DEPTH) fail(`cannot compare values nested deeper than ${MAX_COMPARE_DEPTH} levels`);
  const keysA = visibleKeys(a);
  const keysB = visibleKeys(b);
  if (keysA.length !== keysB.length) return false;
  return keysA.every((key) => {
    const other = ownValue(b, key);
    return other !== MISSING && deepEqual(ownValue(a, key), other, depth + 1, fail);
  });
}

function visibleKeys(value: object): string[] {
  return Object.keys(value).filter((key) => ownValue(value, key) !== MISSING);
}

function resolve(segments: string[], pos: number, scope: Scope): unknown {
  let value = scope.ctx;
  for (let i = 0; i < segments.length; i++) {
    const next = ownValue(value, segments[i]);
    if (next === MISSING) throw missing(segments, i, value, pos, scope.source);
    value = next;
  }
  return value;
}

/**
 * Reads an own data property only: no prototype chain, no getters, and values a template cannot use
 * (undefined, functions, symbols) count as missing.
 */
function ownValue(container: unknown, key: string): unknown {
  if (typeof container !== "object" || container === null || FORBIDDEN.has(key)) return MISSING;
  if (Array.isArray(container) && !INDEX.test(key)) return MISSING;
  const descriptor = Object.getOwnPropertyDescriptor(container, key);
  if (!descriptor || !("value" in descriptor)) return MISSING;
  const value = descriptor.value;
  if (value === undefined || typeof value === "function" || typeof value === "symbol") return MISSING;
  return value;
}

function missing(
  segments: string[],
  at: number,
  container: unknown,
  pos: number,
  source: string,
): TemplateError {
  const path = segments.join(".");
  const parent = at === 0 ? "the context" : `.${segments.slice(0, at).join(".")}`;
  const key = segments[at];
  let why: string;
  if (Array.isArray(container)) {
    why = `${parent} is a list of ${container.length} item(s), with no index "${key}"`;
  } else if (typeof container === "object" && container !== null) why = `${parent} has no "${key}"`;
  else why = container === null ? `${parent} is null` : `${parent} is a ${typeName(container)}`;
  return new MissingValueError(`missing value at .${path}: ${why}`, { source, position: pos, path });
}

function failAt(scope: Scope, position: number): Fail {
  return (message, cause) => {
    throw new TemplateError(message, { source: scope.source, position, cause });
  };
}
