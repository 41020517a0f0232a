/**
 * Cron expressions of schedule triggers, checked at load time with the parser that runs them.
 *
 * @module
 */

import { Cron, CronPattern } from "croner";

/** The reason `cron` cannot be scheduled, or `undefined` when it can. */
export function cronProblem(cron: string): string | undefined {
  try {
    new CronPattern(cron);
  } catch (err) {
    // croner prefixes its messages with the class name, which means nothing to a YAML author.
    return err instanceof Error ? err.message.replace(/^CronPattern:\s*/, "") : String(err);
  }
  // Evaluated as the schedule runner does (UTC). croner looks years ahead, so no next run means none ever:
  // a day that no month has (30 February, 31 April), listed at start and silent forever after.
  const job = new Cron(cron, { timezone: "UTC", paused: true });
  try {
    if (job.nextRun() === null) {
      return `"${cron}" never fires: no date matches it (a day its month never has, such as 30 February)`;
    }
  } finally {
    job.stop();
  }
  return undefined;
}
