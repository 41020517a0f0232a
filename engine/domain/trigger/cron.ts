/**
 * Cron expressions of schedule triggers, checked at load time with the parser that runs them.
 *
 * @module
 */

import { CronPattern } from "croner";

/** The reason `cron` cannot be scheduled, or `undefined` when it can. */
export function cronProblem(cron: string): string | undefined {
  try {
    new CronPattern(cron);
    return undefined;
  } catch (err) {
    // croner prefixes its messages with the class name, which means nothing to a YAML author.
    return err instanceof Error ? err.message.replace(/^CronPattern:\s*/, "") : String(err);
  }
}
