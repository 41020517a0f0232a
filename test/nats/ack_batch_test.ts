/** Acks held for the connection's next write (pkg/nats/ack_batch.ts), against a real nats-server. */
import assert from "node:assert/strict";
import { create } from "@bufbuild/protobuf";
import { jetstreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { TaskExecutionSuccessSchema } from "../../pkg/pb/mod.ts";
import { ackBatchOf } from "../../pkg/nats/ack_batch.ts";
import { Bus, type BusMessage, connectNats, provisionJetStream, STREAMS } from "../../pkg/nats/mod.ts";
import { startTestNats } from "../support/nats.ts";

/** Counts the writes of `nc` that carry at least one ack (a `$JS.ACK.` subject). */
function countAckWrites(nc: NatsConnection): () => number {
  const transport = (nc as unknown as { protocol: { transport: { send(frame: Uint8Array): void } } }).protocol
    .transport;
  const send = transport.send.bind(transport);
  let writes = 0;
  transport.send = (frame: Uint8Array) => {
    if (new TextDecoder().decode(frame).includes("$JS.ACK.")) writes++;
    send(frame);
  };
  return () => writes;
}

async function until(check: () => Promise<boolean>, what: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`timed out waiting for ${what}`);
}

function event(bus: Bus, execId: string, n: number): BusMessage {
  return create(TaskExecutionSuccessSchema, {
    metadata: bus.metadata(execId),
    workflow: { id: "w", execId },
    task: { id: `t${n}`, execId: `task-${n}` },
  }) as BusMessage;
}

Deno.test("acks of deliveries handled one by one go out together with the connection's next write", async () => {
  const nats = await startTestNats();
  const consuming = await connectNats(nats.url, { name: "ack-batch-consumer" });
  const other = await connectNats(nats.url, { name: "ack-batch-publisher" });
  try {
    await provisionJetStream(other);
    // Held for a minute unless something else is written: only the flush below sends them.
    ackBatchOf(consuming, 60_000);
    const writesWithAcks = countAckWrites(consuming);
    const bus = new Bus(consuming, { source: "test" });
    const publisher = new Bus(other, { source: "test" });
    const execId = crypto.randomUUID();
    const filter = `compozy.${execId}.task.evts.*.success`;
    let handled = 0;
    const consumer = await bus.consume({
      stream: STREAMS.events,
      durable: "ack-batch",
      filterSubject: filter,
      handler: () => {
        handled++;
      },
    });
    const jsm = await jetstreamManager(other);
    const total = 10;
    for (let i = 0; i < total; i++) {
      await publisher.publish(event(publisher, execId, i));
      // One delivery at a time: before the batch, each handled delivery was acknowledged in a write of its own.
      await until(() => Promise.resolve(handled === i + 1), `delivery ${i + 1}`);
    }
    const held = await jsm.consumers.info(STREAMS.events, "ack-batch");
    assert.equal(held.num_ack_pending, total, "the acks are held");
    assert.equal(writesWithAcks(), 0);

    await consuming.flush(); // Any write: the held acks go out with it.
    await until(
      async () => (await jsm.consumers.info(STREAMS.events, "ack-batch")).num_ack_pending === 0,
      "the acks to reach the server",
    );
    assert.equal(writesWithAcks(), 1, "ten acks in one write");
    const info = await jsm.consumers.info(STREAMS.events, "ack-batch");
    assert.equal(info.num_redelivered, 0);
    await consumer.stop();
  } finally {
    await consuming.close();
    await other.close();
    await nats.stop();
  }
});

Deno.test("a held ack goes out on its own after the batch delay when nothing else is written", async () => {
  const nats = await startTestNats();
  const consuming = await connectNats(nats.url, { name: "ack-batch-consumer" });
  const other = await connectNats(nats.url, { name: "ack-batch-publisher" });
  try {
    await provisionJetStream(other);
    const bus = new Bus(consuming, { source: "test" });
    const publisher = new Bus(other, { source: "test" });
    const execId = crypto.randomUUID();
    let handled = 0;
    const consumer = await bus.consume({
      stream: STREAMS.events,
      durable: "ack-batch-timer",
      filterSubject: `compozy.${execId}.task.evts.*.success`,
      handler: () => {
        handled++;
      },
    });
    await publisher.publish(event(publisher, execId, 0));
    await until(() => Promise.resolve(handled === 1), "the delivery");
    const jsm = await jetstreamManager(other);
    await until(
      async () => (await jsm.consumers.info(STREAMS.events, "ack-batch-timer")).num_ack_pending === 0,
      "the ack to reach the server",
    );
    await consumer.stop();
  } finally {
    await consuming.close();
    await other.close();
    await nats.stop();
  }
});
