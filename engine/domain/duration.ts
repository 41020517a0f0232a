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

/**
 * Longest duration a config may hold: 10 years. Far beyond any real time-out or back-off, long enough for a
 * yearly renewal sleep, and far from the largest date JavaScript can hold (year 275760), so that a deadline
 * computed from it is always a valid date.
 */
export const MAX_DURATION = "3650d";
export const MAX_DURATION_MS = 3650 * 86_400_000;

/**
 * JSON Schema `format` of a config duration: positive and at most {@linkcode MAX_DURATION}. Time-outs, sleeps
 * and ages use it: zero there means "at once" or "never" (NATS reads a `max_age` of 0 as unlimited).
 */
export const DURATION_FORMAT = "duration";
/** Like {@linkcode DURATION_FORMAT}, zero allowed: a back-off delay of 0 retries at once. */
export const DELAY_FORMAT = "delay";

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

/**
 * Why `s` breaks the bounds of `format` ({@linkcode DURATION_FORMAT} or {@linkcode DELAY_FORMAT}), or
 * `undefined` when it keeps them or is no duration at all (the pattern reports that).
 */
export function durationBoundProblem(s: string, format: string): string | undefined {
  if (!DURATION_RE.test(s)) return undefined;
  const ms = Number(s.slice(0, s.search(/[a-z]/))) * UNIT_MS[s.match(/[a-z]+$/)![0]];
  if (ms > MAX_DURATION_MS) return `expected a duration of at most ${MAX_DURATION} (10 years), found "${s}"`;
  if (ms === 0 && format === DURATION_FORMAT) return `expected a duration above zero, found "${s}"`;
  return undefined;
}
