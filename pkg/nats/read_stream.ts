/** Reading what a stream holds right now, for queries that need every matching message once. */
import { DeliverPolicy, type JetStreamClient, type JsMsg } from "@nats-io/jetstream";

/**
 * Every message of `stream` matching `filter` (stored before the call), in stream order, through an
 * ordered consumer that is deleted afterwards. `lastPerSubject` keeps only the newest message of each
 * subject (the current value of every KV key).
 */
export async function readStream(
  js: JetStreamClient,
  stream: string,
  filter: string,
  options: { lastPerSubject?: boolean } = {},
): Promise<JsMsg[]> {
  const consumer = await js.consumers.get(stream, {
    filter_subjects: filter,
    deliver_policy: options.lastPerSubject ? DeliverPolicy.LastPerSubject : DeliverPolicy.All,
  });
  let remaining = (await consumer.info(true)).num_pending;
  const messages: JsMsg[] = [];
  while (remaining > 0) {
    const batch = await consumer.fetch({ max_messages: Math.min(remaining, 1_000), expires: 2_000 });
    const before = messages.length;
    for await (const msg of batch) {
      messages.push(msg);
      remaining = msg.info.pending;
    }
    if (messages.length === before) break;
  }
  await consumer.delete().catch(() => {});
  return messages;
}
