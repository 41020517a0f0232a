/**
 * Bounds on what a sandbox sends back, checked on the text before the runtime parses it: a JSON text
 * nested 300,000 levels deep parses in V8 but breaks the API clients and the JSON tools that read it later,
 * and a message larger than the bus carries cannot be delivered at all.
 *
 * @module
 */

/** Default bound on the nesting of arrays and objects in a tool's output (and in any JSON a sandbox sends). */
export const DEFAULT_MAX_OUTPUT_DEPTH = 64;

/** Room left in a NATS message for the reply's ids, timings, protobuf framing and headers. */
export const NATS_HEADROOM_BYTES = 16 * 1024;

const OPEN_BRACKET = 0x5b; // [
const OPEN_BRACE = 0x7b; // {
const CLOSE_BRACKET = 0x5d; // ]
const CLOSE_BRACE = 0x7d; // }
const QUOTE = 0x22; // "
const BACKSLASH = 0x5c; // \

/**
 * Returns true when the JSON `text` nests arrays and objects deeper than `maxDepth`. Brackets
 * inside strings are not counted. Malformed JSON is left for the parser to refuse.
 *
 * It runs on every result, so it is cheap: a text with at most `maxDepth` opening brackets cannot be too
 * deep (counted with native `indexOf`), and string contents are skipped the same way.
 *
 * @example
 * ```ts
 * import { jsonTooDeep } from "./output_limits.ts";
 * console.assert(!jsonTooDeep('{"a":["]]]"]}', 2));
 * console.assert(jsonTooDeep("[[[1]]]", 2));
 * ```
 */
export function jsonTooDeep(text: string, maxDepth: number): boolean {
  if (openingBracketsAtMost(text, maxDepth)) return false;
  let depth = 0;
  for (let i = 0; i < text.length; i++) {
    const b = text.charCodeAt(i);
    if (b === QUOTE) i = closingQuote(text, i);
    else if (b === OPEN_BRACKET || b === OPEN_BRACE) {
      if (++depth > maxDepth) return true;
    } else if (b === CLOSE_BRACKET || b === CLOSE_BRACE) depth--;
  }
  return false;
}

function openingBracketsAtMost(text: string, max: number): boolean {
  let count = 0;
  for (const c of ["[", "{"]) {
    for (let i = text.indexOf(c); i !== -1; i = text.indexOf(c, i + 1)) if (++count > max) return false;
  }
  return true;
}

/** Index of the quote that ends the string opened at `open` (one not escaped by an odd run of `\`). */
function closingQuote(text: string, open: number): number {
  for (let i = text.indexOf('"', open + 1); i !== -1; i = text.indexOf('"', i + 1)) {
    let backslashes = 0;
    for (let j = i - 1; j > open && text.charCodeAt(j) === BACKSLASH; j--) backslashes++;
    if (backslashes % 2 === 0) return i;
  }
  return text.length;
}

/**
 * The largest tool output a reply can carry on a connection: the server's `max_payload` (from its INFO)
 * less {@linkcode NATS_HEADROOM_BYTES}, or `fallback` before the server has said.
 */
export function busOutputLimit(maxPayload: number | undefined, fallback: number): number {
  if (maxPayload === undefined || !Number.isFinite(maxPayload) || maxPayload <= NATS_HEADROOM_BYTES) {
    return fallback;
  }
  return maxPayload - NATS_HEADROOM_BYTES;
}
