/** Reads an execution's stored events back from the EVENTS stream, in order. */
import type { DescMessage, MessageShape } from "@bufbuild/protobuf";
import { DeliverPolicy, type JetStreamClient } from "@nats-io/jetstream";
import { decodeBySubject, STREAMS } from "../../pkg/nats/mod.ts";

export interface StoredEvent {
  seq: number;
  subject: string;
  /** `<component>.<type>`, e.g. `task.success`. */
  type: string;
  time: Date;
  message: MessageShape<DescMessage>;
}

/**
 * Every event of a run (all executions sharing `correlationId`), in stream order. Undecodable entries are
 * skipped here: the consumers that met them live have already dead-lettered them.
 */
export async function readRunEvents(js: JetStreamClient, correlationId: string): Promise<StoredEvent[]> {
  const consumer = await js.consumers.get(STREAMS.events, {
    filter_subjects: `compozy.${correlationId}.*.evts.*.*`,
    deliver_policy: DeliverPolicy.All,
  });
  const info = await consumer.info(true);
  let remaining = info.num_pending;
  const events: StoredEvent[] = [];
  while (remaining > 0) {
    const batch = await consumer.fetch({ max_messages: Math.min(remaining, 1_000), expires: 2_000 });
    let got = 0;
    for await (const msg of batch) {
      got++;
      remaining = msg.info.pending;
      const tokens = msg.subject.split(".");
      try {
        events.push({
          seq: msg.seq,
          subject: msg.subject,
          type: `${tokens[2]}.${tokens[5]}`,
          time: new Date(msg.timestamp),
          message: decodeBySubject(msg.subject, msg.data),
        });
      } catch {
        // Dead-lettered by the live consumers; the history shows what could be read.
      }
    }
    if (got === 0) break;
  }
  await consumer.delete().catch(() => {});
  return events;
}

/** The events of one execution within its run. */
export function eventsOfExecution(events: StoredEvent[], execId: string): StoredEvent[] {
  return events.filter((e) => (e.message as { workflow?: { execId: string } }).workflow?.execId === execId);
}
