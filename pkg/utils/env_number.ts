/**
 * Numeric settings read from the environment (timings an operator tunes). A value that is set but is not
 * what the setting needs stops the process with the variable's name, rather than falling back unseen.
 *
 * @module
 */

/** The thrown error: names the variable and the value it holds. */
export class EnvSettingError extends Error {
  constructor(readonly variable: string, readonly value: string, expected: string) {
    super(`${variable} must be ${expected}, got '${value}'`);
    this.name = "EnvSettingError";
  }
}

/** The longest delay a timer takes (setTimeout fires at once past 2^31-1 ms, about 24.8 days). */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * A positive whole number of milliseconds, at most MAX_TIMER_MS, from `variable`; undefined when unset or
 * empty (the default applies).
 */
export function positiveMsFromEnv(variable: string): number | undefined {
  return wholeNumberFromEnv(variable, 1, MAX_TIMER_MS, `a positive whole number of milliseconds`);
}

/** A whole number of at least `min` from `variable`; undefined when unset or empty (the default applies). */
export function integerFromEnv(variable: string, min: number): number | undefined {
  return wholeNumberFromEnv(variable, min, Number.MAX_SAFE_INTEGER, `a whole number of at least ${min}`);
}

/**
 * Decimal digits only: `Number` also reads `1e21`, `0x10` and `100.0` as whole numbers, and a value past a
 * timer's range made a timer fire every millisecond (outside break attempt breaker2, D3).
 */
function wholeNumberFromEnv(
  variable: string,
  min: number,
  max: number,
  expected: string,
): number | undefined {
  const raw = Deno.env.get(variable);
  if (raw === undefined || raw.trim() === "") return undefined;
  const value = /^[0-9]+$/.test(raw.trim()) ? Number(raw.trim()) : NaN;
  if (!(value >= min && value <= max)) {
    throw new EnvSettingError(
      variable,
      raw,
      max === Number.MAX_SAFE_INTEGER ? expected : `${expected} up to ${max}`,
    );
  }
  return value;
}
