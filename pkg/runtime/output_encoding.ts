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
const { defineProperty, getPrototypeOf, keys } = Object;
const boxedValueOf = [Number.prototype.valueOf, String.prototype.valueOf, Boolean.prototype.valueOf];
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

/** What JSON would change in an object whose prototype is not a plain object's or an array's. */
function unfaithfulObject(value: object): string | undefined {
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

/** An output over the byte bound or nested deeper than {@linkcode MAX_OUTPUT_NESTING}: too large, not unrepresentable. */
export class OutputTooLarge extends RangeError {}

/**
 * Deeper than this the snapshot does not go: the runtime refuses outputs nested more than `maxOutputDepth`
 * (64 by default) anyway, and the snapshot's own stack must not overflow.
 */
export const MAX_OUTPUT_NESTING = 1024;

/** Left out of an object, as JSON leaves out a property whose value is `undefined`. */
const SKIP = Symbol("skip");

type Path = (string | number)[];

/**
 * `output` as JSON, or throws a `TypeError` naming the path of the first value JSON cannot keep, or
 * {@linkcode OutputTooLarge} once the copy is sure to encode to more than `maxChars` characters or nests more
 * than {@linkcode MAX_OUTPUT_NESTING} levels.
 *
 * Each property is read once, into a copy of plain arrays, plain objects and primitives, and the
 * copy is what is checked and encoded. Reading the output twice (once to encode, once to check) let a getter
 * or a Proxy answer each read differently: `NaN` checked and `1` encoded, or `1` checked and `NaN` encoded
 * as `null` (red team 6, S4). The copy follows `JSON.stringify`'s own steps: `toJSON(key)` first, boxed
 * primitives unboxed, own enumerable string keys in order, an `undefined` property left out. Its size is
 * counted as it grows, so an object shared a million times over is refused before it is copied that often.
 */
export function encodeOutput(output: unknown, maxChars = Infinity): string | undefined {
  const copy = new Snapshot(maxChars).take(output, "", false);
  return copy === SKIP ? undefined : stringify(copy);
}

class Snapshot {
  readonly #path: Path = [];
  readonly #seen: object[] = [];
  /** Characters the copy may still encode to; each value counts at least its own text and a comma. */
  #left: number;

  constructor(readonly maxChars: number) {
    this.#left = maxChars;
  }

  take(value: unknown, key: string, inArray: boolean): unknown {
    if ((typeof value === "object" && value !== null) || typeof value === "bigint") {
      const toJSON = (value as { toJSON?: unknown }).toJSON;
      if (typeof toJSON === "function") value = apply(toJSON, value, [key]);
    }
    switch (typeof value) {
      case "string":
        this.#spend(value.length + 3);
        return value;
      case "boolean":
        this.#spend(5);
        return value;
      case "number":
        // NaN and ±Infinity: the only numbers for which this is not 0.
        if (value - value !== 0) throw this.#unrepresentable(String(value));
        this.#spend(2);
        return value;
      case "undefined":
        // In an object the property is left out, as JSON does; in an array it would become null.
        if (inArray) throw this.#unrepresentable("undefined");
        return SKIP;
      case "object":
        if (value === null) {
          this.#spend(5);
          return null;
        }
        return this.#object(value);
      case "bigint":
        throw this.#unrepresentable("a BigInt");
      default:
        throw this.#unrepresentable(`a ${typeof value}`);
    }
  }

  #object(value: object): unknown {
    const prototype = getPrototypeOf(value);
    if (prototype !== objectPrototype && prototype !== arrayPrototype && prototype !== null) {
      const boxed = unboxed(value);
      if (boxed !== undefined) return this.take(boxed, "", false);
      const what = unfaithfulObject(value);
      if (what !== undefined) throw this.#unrepresentable(what);
    }
    const seen = this.#seen;
    if (seen.includes(value)) throw new TypeError(`${where(this.#path)} is circular: it contains itself`);
    if (seen.length >= MAX_OUTPUT_NESTING) {
      throw new OutputTooLarge(
        `the output nests arrays and objects more than ${MAX_OUTPUT_NESTING} levels deep`,
      );
    }
    this.#spend(2);
    seen.push(value);
    const path = this.#path;
    let copy: unknown[] | Record<string, unknown>;
    if (isArray(value)) {
      const length = value.length;
      copy = new Array(length);
      for (let i = 0; i < length; i++) {
        const item = value[i];
        // Strings and finite numbers, most of any output, without a call.
        if (typeof item === "string") {
          this.#spend(item.length + 3);
          copy[i] = item;
        } else if (typeof item === "number" && item - item === 0) {
          this.#spend(2);
          copy[i] = item;
        } else {
          path.push(i);
          copy[i] = this.take(item, String(i), true);
          path.pop();
        }
      }
    } else {
      const record = value as Record<string, unknown>;
      // A literal object keeps V8's fast properties (a null-prototype one is a dictionary, ~3× slower here);
      // `__proto__` is the one key an assignment would not copy.
      const out: Record<string, unknown> = {};
      for (const name of keys(record)) {
        const item = record[name];
        if (typeof item === "string") {
          this.#spend(name.length + item.length + 6);
          put(out, name, item);
        } else if (typeof item === "number" && item - item === 0) {
          this.#spend(name.length + 5);
          put(out, name, item);
        } else {
          path.push(name);
          const kept = this.take(item, name, false);
          path.pop();
          if (kept === SKIP) continue;
          this.#spend(name.length + 3);
          put(out, name, kept);
        }
      }
      copy = out;
    }
    seen.pop();
    return copy;
  }

  #spend(chars: number): void {
    this.#left -= chars;
    if (this.#left < 0) throw new OutputTooLarge(`the output encodes to more than ${this.maxChars} bytes`);
  }

  #unrepresentable(what: string): TypeError {
    return new TypeError(`${where(this.#path)} is ${what}, which JSON cannot represent`);
  }
}

/**
 * Sets an own property. A name `out` inherits (`__proto__`, and under the frozen Object.prototype of the
 * sandbox `constructor`, `toString` …: their assignment throws) is defined instead (review R-S2).
 */
function put(out: Record<string, unknown>, name: string, value: unknown): void {
  if (name in out) {
    defineProperty(out, name, { value, enumerable: true, writable: true, configurable: true });
  } else out[name] = value;
}

/** The primitive of a `Number`, `String` or `Boolean` object, which JSON writes as the primitive. */
function unboxed(value: object): number | string | boolean | undefined {
  for (const valueOf of boxedValueOf) {
    let primitive: number | string | boolean;
    try {
      primitive = apply(valueOf, value, []) as number | string | boolean;
    } catch {
      continue; // Not this kind of box.
    }
    if (typeof primitive === "number" && primitive - primitive !== 0) return undefined;
    return primitive;
  }
  return undefined;
}

function where(path: Path): string {
  if (path.length === 0) return "the output";
  let base = "";
  for (const step of path) base = typeof step === "number" ? `${base}[${step}]` : join(base, step);
  return base;
}

function join(base: string, key: string): string {
  if (!/^[A-Za-z_$][\w$]*$/.test(key)) return `${base}[${stringify(key)}]`;
  return base === "" ? key : `${base}.${key}`;
}
