/**
 * Durations as users write them in YAML: an integer and a unit (`500ms`, `30s`, `5m`, `1h`, `1d`).
 *
 * Durations stay strings in the loaded config so that diagnostics can quote what the user wrote; the engine
 * converts them with {@linkcode parseDuration} when it needs a number.
 *
 * @module
 */

/** JSON Schema pattern of a duration; kept in one place so schema and parser cannot disagree. */
export const DURATION_PATTERN = "^[0-9]+(ms|s|m|h|d)$";

const UNIT_MS: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 };
const DURATION_RE = new RegExp(DURATION_PATTERN);

/**
 * Converts a duration to milliseconds.
 *
 * @example
 * ```ts
 * import { parseDuration } from "./duration.ts";
 * parseDuration("5m"); // 300000
 * ```
 * @throws {RangeError} when `s` is not a duration, naming the value and the accepted forms.
 */
export function parseDuration(s: string): number {
  const match = typeof s === "string" ? DURATION_RE.exec(s) : null;
  if (!match) {
    throw new RangeError(
      `Cannot parse duration ${JSON.stringify(s)}: expected an integer and a unit (500ms, 30s, 5m, 1h, 1d)`,
    );
  }
  const amount = Number(s.slice(0, s.length - match[1].length));
  const ms = amount * UNIT_MS[match[1]];
  if (!Number.isSafeInteger(ms)) {
    throw new RangeError(`Cannot parse duration ${JSON.stringify(s)}: it is too long`);
  }
  return ms;
}
