/**
 * A bound on the work of one parse of a module by `@babel/parser`, which runs on the runtime's own thread
 * (import_scan.ts), where a parse that does not end holds every other tool's call, and `compozy validate`.
 *
 * Babel reads each character about once: 1.07 reads per character on average, 2.46 at most, over the
 * 3,159 modules of this checkout's dependencies. But it backtracks: at a `<` that starts an expression of a
 * TypeScript module it first tries a generic arrow function (`<T>(x) => x`), parsing everything up to where
 * that fails, and then parses it all again as a type assertion (`<T>(x)`), so nested assertions cost twice as
 * much per level: `x = <T>(<T>(…b))` of 22 levels, 150 bytes, held the thread 15 s, and each level more
 * doubled it (outside break attempt brk42). Every re-read of the source goes through `charCodeAt`, so the
 * parser is given the source as a `String` object whose `charCodeAt` counts, and throws once the count
 * passes the budget. Babel takes such an object as it takes a string (it only indexes and slices it).
 *
 * @module
 */

/** Reads of the source allowed per character: six times the most an honest module took (above). */
export const PARSE_READS_PER_CHAR = 16;
/** Reads allowed whatever the size, so that a small module with a few nested assertions still parses. */
export const PARSE_READS_MIN = 1_000_000;

/** The parse read the source more often than its budget allows; `index` is where it was reading then. */
export class ParseBudgetExceeded extends Error {
  readonly index: number;

  constructor(index: number, budget: number, length: number) {
    super(`the parser read over ${budget} characters of this ${length}-character module and was stopped`);
    this.name = "ParseBudgetExceeded";
    this.index = index;
  }
}

/**
 * `source` as a `String` object for the parser, whose `charCodeAt` throws {@linkcode ParseBudgetExceeded}
 * past the budget of `source`'s length.
 */
export function budgetedSource(source: string): string {
  const charCodeAt = String.prototype.charCodeAt;
  const budget = Math.max(PARSE_READS_MIN, source.length * PARSE_READS_PER_CHAR);
  let reads = 0;
  const wrapped = new String(source);
  Object.defineProperty(wrapped, "charCodeAt", {
    value(index: number): number {
      if (++reads > budget) throw new ParseBudgetExceeded(index, budget, source.length);
      return charCodeAt.call(source, index);
    },
  });
  // A string to the parser's types; at run time it is read only through String's methods.
  return wrapped as unknown as string;
}
