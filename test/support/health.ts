/** Waiting for processes to be up: the health subjects every engine and runtime answers (docs/operations.md). */
import type { NatsConnection } from "@nats-io/transport-node";

/**
 * Waits until `count` processes answer a health subject (`compozy.health.engine`, `compozy.health.runtime`),
 * asking every 250 ms for up to `timeoutMs`; throws saying how many answered last.
 */
export async function untilAnswered(
  nc: NatsConnection,
  subject: string,
  count: number,
  timeoutMs = 120_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let answers = 0;
  while (Date.now() < deadline) {
    answers = 0;
    try {
      const replies = await nc.requestMany(subject, undefined, {
        strategy: "stall",
        stall: 200,
        maxWait: 2_000,
      });
      for await (const _ of replies) answers++;
    } catch (e) {
      // Nobody answers yet while the processes start.
      if (!/no responders/i.test(e instanceof Error ? e.message : String(e))) throw e;
    }
    if (answers >= count) return;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`${answers} of ${count} processes answered ${subject} within ${timeoutMs} ms`);
}
