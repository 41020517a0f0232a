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

/** A positive whole number of milliseconds from `variable`; undefined when unset or empty (the default applies). */
export function positiveMsFromEnv(variable: string): number | undefined {
  const raw = Deno.env.get(variable);
  if (raw === undefined || raw.trim() === "") return undefined;
  const value = Number(raw);
  if (!Number.isInteger(value) || value <= 0) {
    throw new EnvSettingError(variable, raw, "a positive whole number of milliseconds");
  }
  return value;
}

/** A whole number of at least `min` from `variable`; undefined when unset or empty (the default applies). */
export function integerFromEnv(variable: string, min: number): number | undefined {
  const raw = Deno.env.get(variable);
  if (raw === undefined || raw.trim() === "") return undefined;
  const value = Number(raw);
  if (!Number.isSafeInteger(value) || value < min) {
    throw new EnvSettingError(variable, raw, `a whole number of at least ${min}`);
  }
  return value;
}
