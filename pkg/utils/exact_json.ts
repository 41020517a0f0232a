/**
 * JSON read without changing a number unseen. `JSON.parse` reads every number as a double: `1e400` becomes
 * Infinity (stored as `null`) and an integer past ±2^53 is rounded (`9007199254740993` is stored as
 * `…992`, an id of 19 digits loses its last ones). A workflow's input, a signal's payload or a re-run's input
 * read that way would run on other values than the user sent, so such a number is refused, named by its JSON
 * pointer, and the user can send it as a string.
 *
 * @module
 */

/** A number of the JSON text that a double cannot hold: out of range, or an integer it would round. */
export class InexactJsonNumberError extends Error {
  override name = "InexactJsonNumberError";
  constructor(
    /** JSON pointer of the number ("" for the whole document). */
    readonly pointer: string,
    /** The number as written. */
    readonly source: string,
    /** What a double would make of it, said for a person. */
    readonly problem: string,
  ) {
    super(`${pointer || "/"} is ${source.slice(0, 40)}, ${problem}: send it as a string`);
  }
}

// An integer a double may round has at least 16 digits (2^53 = 9007199254740992), and a number out of a
// double's range has an exponent: texts with neither skip the reviver pass, which costs a second walk.
const MAY_BE_INEXACT = /\d{16}|[eE][+-]?\d{3}/;

/**
 * `JSON.parse(text)`, refusing a number that would not read back as written.
 *
 * @throws {SyntaxError} when `text` is not JSON.
 * @throws {InexactJsonNumberError} naming the first number a double cannot hold exactly.
 *
 * @example
 * ```ts
 * import { parseExactJson } from "./exact_json.ts";
 * parseExactJson('{"id": 12}'); // { id: 12 }
 * parseExactJson('{"id": 12345678901234567890}'); // throws InexactJsonNumberError: /id is 12345678901234567890, …
 * ```
 */
export function parseExactJson(text: string): unknown {
  if (!MAY_BE_INEXACT.test(text)) return JSON.parse(text);
  let inexact = false;
  // The reviver sees each number with its source text but not its path: a number a double cannot hold is
  // swapped for a marker, which the walk below finds in document order and names by its pointer.
  const value = JSON.parse(text, (_key, item, context?: { source?: string }) => {
    if (typeof item !== "number" || context?.source === undefined) return item;
    const problem = numberProblem(item, context.source);
    if (!problem) return item;
    inexact = true;
    return new InexactJsonNumberError("", context.source, problem);
  });
  if (!inexact) return value;
  throw firstInexact(value, "");
}

function numberProblem(value: number, source: string): string | undefined {
  if (!Number.isFinite(value)) return "a number outside the range of a double";
  if (/^-?\d+$/.test(source) && BigInt(source) !== BigInt(value)) {
    return `an integer past ±2^53, which a double stores as ${BigInt(value)}`;
  }
  return undefined;
}

/** The marker of the first inexact number in document order, with its pointer. */
function firstInexact(value: unknown, pointer: string): InexactJsonNumberError | undefined {
  if (value instanceof InexactJsonNumberError) {
    return new InexactJsonNumberError(pointer, value.source, value.problem);
  }
  if (typeof value !== "object" || value === null) return undefined;
  for (const [key, item] of Object.entries(value)) {
    const found = firstInexact(item, `${pointer}/${key.replaceAll("~", "~0").replaceAll("/", "~1")}`);
    if (found) return found;
  }
  return undefined;
}
