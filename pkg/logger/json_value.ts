/**
 * Turns any logged value into plain JSON data without ever throwing: log properties come from every corner
 * of the code (errors with causes, bigints, cyclic objects, byte arrays) and a log call must not fail on them.
 */

export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

/** Nesting deeper than this is summarised: a log line is for reading, not for dumping object graphs. */
const MAX_DEPTH = 8;

/** The JSON form of `value`; unrepresentable parts become short descriptive strings. */
export function toJsonValue(value: unknown): JsonValue {
  return convert(value, new Set(), 0);
}

/** `JSON.stringify` of {@link toJsonValue}: a string for any input. */
export function stringifySafely(value: unknown): string {
  return JSON.stringify(toJsonValue(value)) ?? "null";
}

function convert(value: unknown, ancestors: Set<object>, depth: number): JsonValue {
  switch (typeof value) {
    case "string":
    case "boolean":
      return value;
    case "number":
      return Number.isFinite(value) ? value : String(value);
    case "bigint":
      return value.toString();
    case "undefined":
      return null;
    case "symbol":
      return value.toString();
    case "function":
      return `[Function ${value.name || "anonymous"}]`;
  }
  if (value === null) return null;
  const object = value as object;
  if (ancestors.has(object)) return "[Circular]";
  if (object instanceof Date) return Number.isNaN(object.getTime()) ? "Invalid Date" : object.toISOString();
  if (object instanceof Uint8Array) return `[${object.byteLength} bytes]`;
  if (depth >= MAX_DEPTH) return Array.isArray(object) ? "[Array]" : "[Object]";
  ancestors.add(object);
  try {
    if (object instanceof Error) return convertError(object, ancestors, depth);
    if (Array.isArray(object)) return object.map((v) => convert(v, ancestors, depth + 1));
    if (object instanceof Map) return convertEntries(object.entries(), ancestors, depth);
    if (object instanceof Set) return [...object].map((v) => convert(v, ancestors, depth + 1));
    return convertEntries(entriesOf(object), ancestors, depth);
  } catch (e) {
    // A throwing getter or proxy: say so instead of failing the log call.
    return `[Unserialisable: ${e instanceof Error ? e.message : String(e)}]`;
  } finally {
    ancestors.delete(object);
  }
}

/**
 * The own enumerable entries of an object, each read on its own: a getter that throws becomes a note in
 * place of its value instead of losing the whole object.
 */
export function entriesOf(object: object): [string, unknown][] {
  return Object.keys(object).map((key) => {
    try {
      return [key, (object as Record<string, unknown>)[key]];
    } catch (e) {
      return [key, `[Unserialisable: ${e instanceof Error ? e.message : String(e)}]`];
    }
  });
}

function convertEntries(
  entries: Iterable<[unknown, unknown]>,
  ancestors: Set<object>,
  depth: number,
): { [key: string]: JsonValue } {
  const out: { [key: string]: JsonValue } = {};
  for (const [k, v] of entries) {
    if (v === undefined) continue;
    out[String(k)] = convert(v, ancestors, depth + 1);
  }
  return out;
}

function convertError(error: Error, ancestors: Set<object>, depth: number): { [key: string]: JsonValue } {
  const out: { [key: string]: JsonValue } = { name: error.name, message: error.message };
  // Typed errors carry their context (subject, field, code…) as own properties: keep them.
  for (const [k, v] of entriesOf(error)) {
    if (v !== undefined && !(k in out)) out[k] = convert(v, ancestors, depth + 1);
  }
  if (error.stack) out.stack = error.stack;
  if (error.cause !== undefined) out.cause = convert(error.cause, ancestors, depth + 1);
  return out;
}
