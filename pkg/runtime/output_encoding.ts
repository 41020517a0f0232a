/**
 * A tool's output is encoded as JSON inside the sandbox's worker, and JSON cannot represent every
 * JavaScript value: `JSON.stringify` turns `NaN` and `Infinity` into `null`, a `Map` or `Set` into `{}`, and
 * `undefined`, a function or a symbol into `null` in an array or nothing in an object, silently (outside
 * review B12). A workflow engine records what a step returned; recording something else loses data with
 * no error. So, as Temporal fails a payload its converter cannot encode, such an output fails the call
 * `tool_output_invalid`, naming the path of the first value that JSON would change.
 *
 * Kept as JSON does it, on purpose and documented (docs/runtime-sandbox.md): a value with a `toJSON`
 * method is encoded as what that returns (a `Date` as its ISO string: the usual meaning of a date in JSON);
 * an object property whose value is `undefined` is left out (absent and undefined read the same); `-0` is
 * `0`; an instance of a class of the tool's own is encoded by its own enumerable properties.
 *
 * @module
 */

const { stringify } = JSON;
const { isArray } = Array;
const { getPrototypeOf, keys } = Object;
const { isView } = ArrayBuffer;
const { apply } = Reflect;
const objectPrototype = Object.prototype;
const arrayPrototype = Array.prototype;
/** Getters that throw unless their receiver is a real instance: a brand check the prototype cannot fake. */
const brands: [string, () => unknown][] = [
  ["a Map", Object.getOwnPropertyDescriptor(Map.prototype, "size")!.get!],
  ["a Set", Object.getOwnPropertyDescriptor(Set.prototype, "size")!.get!],
  ["an ArrayBuffer", Object.getOwnPropertyDescriptor(ArrayBuffer.prototype, "byteLength")!.get!],
  ["a SharedArrayBuffer", Object.getOwnPropertyDescriptor(SharedArrayBuffer.prototype, "byteLength")!.get!],
  ["a RegExp", Object.getOwnPropertyDescriptor(RegExp.prototype, "source")!.get!],
];
const classes: [string, abstract new (...args: never[]) => unknown][] = [
  ["a WeakMap", WeakMap],
  ["a WeakSet", WeakSet],
  ["a WeakRef", WeakRef],
  ["a Promise", Promise],
  ["an Error", Error],
];

/** Ends the replacer pass at the first value found. */
class Unfaithful {
  constructor(readonly what: string) {}
}

/** What JSON would change in `value` (held by `holder`), or undefined when it encodes faithfully. */
function unfaithful(holder: unknown, value: unknown): string | undefined {
  switch (typeof value) {
    case "string":
    case "boolean":
      return undefined;
    case "number":
      // NaN and ±Infinity: the only numbers for which this is not 0.
      return value - value === 0 ? undefined : String(value);
    case "object":
      return value === null ? undefined : unfaithfulObject(value);
    case "undefined":
      // In an object the property is left out, as JSON does; in an array it would become null.
      return isArray(holder) ? "undefined" : undefined;
    case "bigint":
      return "a BigInt";
    default:
      return `a ${typeof value}`;
  }
}

function unfaithfulObject(value: object): string | undefined {
  const prototype = getPrototypeOf(value);
  if (prototype === objectPrototype || prototype === arrayPrototype || prototype === null) return undefined;
  if (isView(value)) return "a typed array or DataView";
  for (const [what, getter] of brands) {
    try {
      apply(getter, value, []);
      return what;
    } catch {
      // Not one of these.
    }
  }
  for (const [what, type] of classes) if (value instanceof type) return what;
  return undefined;
}

/**
 * `output` as JSON, or throws a `TypeError` naming the path of the first value JSON cannot keep. Encoded
 * first (so a cycle or a nesting too deep fails as it always did, and the walk after it is bounded by the
 * encoding's size), then walked without a replacer: a replacer made `JSON.stringify` of a 64 KiB output
 * ~6 times slower (0.6 → 4.2 ms), the walk adds about the encoding's own time.
 */
export function encodeOutput(output: unknown): string | undefined {
  let text: string | undefined;
  try {
    text = stringify(output);
  } catch (e) {
    // A BigInt: name where it is, when the replacer pass finds it (it fails the same way on a cycle).
    const found = firstUnfaithful(output);
    if (found !== undefined) throw new TypeError(found);
    throw e;
  }
  const found = walk(output, undefined, 0);
  if (found !== undefined) throw new TypeError(firstUnfaithful(output) ?? found);
  return text;
}

/**
 * Deeper than this the walk does not look: the runtime refuses outputs nested more than `maxOutputDepth`
 * (64 by default) anyway, and the walk's own stack must not overflow.
 */
const MAX_WALK_DEPTH = 1024;

/** The first value of `value` that JSON would change, as stringify meets them; a value with `toJSON` is trusted. */
function walk(value: unknown, holder: unknown, depth: number): string | undefined {
  if (typeof value !== "object" || value === null) return unfaithful(holder, value);
  if (depth >= MAX_WALK_DEPTH || typeof (value as { toJSON?: unknown }).toJSON === "function") {
    return undefined;
  }
  if (isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const item = value[i];
      // Strings and finite numbers, most of any output, without a call.
      if (typeof item === "string" || (typeof item === "number" && item - item === 0)) continue;
      const found = walk(item, value, depth + 1);
      if (found !== undefined) return found;
    }
    return undefined;
  }
  const prototype = getPrototypeOf(value);
  if (prototype !== objectPrototype && prototype !== null) {
    const what = unfaithfulObject(value);
    if (what !== undefined) return what;
    return walkKeys(value as Record<string, unknown>, depth);
  }
  // A plain object: `for…in` meets its own enumerable keys only (Object.prototype has none: lockdown froze
  // it), without the array `Object.keys` would allocate.
  const record = value as Record<string, unknown>;
  for (const key in record) {
    const item = record[key];
    if (typeof item === "string" || (typeof item === "number" && item - item === 0)) continue;
    const found = walk(item, record, depth + 1);
    if (found !== undefined) return found;
  }
  return undefined;
}

function walkKeys(record: Record<string, unknown>, depth: number): string | undefined {
  for (const key of keys(record)) {
    const found = walk(record[key], record, depth + 1);
    if (found !== undefined) return found;
  }
  return undefined;
}

/** On failure only: the path of the first value JSON cannot keep, by a replacer that tracks each object's path. */
function firstUnfaithful(output: unknown): string | undefined {
  const paths = new WeakMap<object, string>();
  let found: string | undefined;
  try {
    stringify(output, function (this: object, key: string, value: unknown) {
      const base = paths.get(this);
      const path = base === undefined ? "" : isArray(this) ? `${base}[${key}]` : join(base, key);
      const what = unfaithful(this, value);
      if (what !== undefined) {
        found = `${path === "" ? "the output" : path} is ${what}, which JSON cannot represent`;
        throw new Unfaithful(what);
      }
      if (typeof value === "object" && value !== null) paths.set(value, path);
      return value;
    });
  } catch (e) {
    if (!(e instanceof Unfaithful)) throw e;
  }
  return found;
}

function join(base: string, key: string): string {
  if (!/^[A-Za-z_$][\w$]*$/.test(key)) return `${base}[${stringify(key)}]`;
  return base === "" ? key : `${base}.${key}`;
}
