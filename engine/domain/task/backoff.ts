/** The delay before a retry (CONFIG.md `retry.backoff`). */
import { parseDuration } from "../duration.ts";
import type { TaskConfig } from "./schema.ts";

/**
 * Exponential back-off with jitter, bounded by `max`: the delay before attempt `attempt + 1` is between half
 * and all of `min(max, initial × factor^(attempt-1))` (defaults: 1 s, 30 s, 2). Half fixed, half random:
 * spreads the retries of many executions without ever retrying at once.
 */
export function backoffDelay(
  retry: TaskConfig["retry"],
  attempt: number,
  random: () => number = Math.random,
): number {
  const backoff = retry?.backoff;
  const initial = backoff?.initial ? parseDuration(backoff.initial) : 1_000;
  const max = backoff?.max ? parseDuration(backoff.max) : 30_000;
  const factor = backoff?.factor ?? 2;
  const ceiling = Math.min(max, initial * factor ** (attempt - 1));
  return Math.round(ceiling / 2 + random() * ceiling / 2);
}
