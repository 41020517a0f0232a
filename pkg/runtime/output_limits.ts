/**
 * Bounds on what a sandbox sends back, checked on the raw bytes before the runtime parses them: a JSON text
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
 * Returns true when the JSON text in `bytes` nests arrays and objects deeper than `maxDepth`. One pass, no
 * allocation; brackets inside strings are not counted. Malformed JSON is left for the parser to refuse.
 *
 * @example
 * ```ts
 * import { jsonTooDeep } from "./output_limits.ts";
 * const enc = new TextEncoder();
 * console.assert(!jsonTooDeep(enc.encode('{"a":["]]]"]}'), 2));
 * console.assert(jsonTooDeep(enc.encode("[[[1]]]"), 2));
 * ```
 */
export function jsonTooDeep(bytes: Uint8Array, maxDepth: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i];
    if (inString) {
      if (b === BACKSLASH) i++;
      else if (b === QUOTE) inString = false;
    } else if (b === QUOTE) inString = true;
    else if (b === OPEN_BRACKET || b === OPEN_BRACE) {
      if (++depth > maxDepth) return true;
    } else if (b === CLOSE_BRACKET || b === CLOSE_BRACE) depth--;
  }
  return false;
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
