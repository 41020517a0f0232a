/**
 * Reading what a stream holds right now, for queries that need every matching message once (an
 * execution's history).
 *
 * A consumer per read was costly (one creation and one deletion each, through the meta leader of a
 * cluster: ~65 ms on three nodes) and, when a read failed half-way, was left behind. nats-server 2.9 has no
 * batch direct get and no multi-filter consumer, so a read first walks the stream with single message gets
 * (`next_by_subj` from a sequence): no consumer, no RAFT, answered by the stream leader, so what a publish
 * acknowledged is there. A long read (more than `walkLimit` messages) continues from where the walk stopped
 * through one consumer, deleted in a `finally` and given an inactivity threshold, so that it goes away even
 * when this process dies before deleting it.
 *
 * @module
 */
import {
  AckPolicy,
  DeliverPolicy,
  type JetStreamClient,
  type JetStreamManager,
  type MsgRequest,
} from "@nats-io/jetstream";
import { type MsgHdrs, nanos } from "@nats-io/transport-node";
import { getLogger } from "@logtape/logtape";

const log = getLogger(["compozy", "nats", "read"]);

/** One stored message, as read back. */
export interface StreamMessage {
  seq: number;
  subject: string;
  data: Uint8Array;
  time: Date;
  headers?: MsgHdrs;
}

export interface ReadStreamOptions {
  /**
   * The first sequence that may match. nats-server 2.9 finds the next match of a wildcard filter by
   * scanning the stream's messages from the given sequence, so a read that starts at 1 costs the whole
   * stream's history: start where the matches begin when that is known (see lastSequenceOf).
   */
  fromSeq?: number;
  /** Messages read one by one before the rest is read through a consumer; default 64. */
  walkLimit?: number;
  /** Stops the read (it then throws the signal's reason); nothing is left behind on the server. */
  signal?: AbortSignal;
}

/** A consumer no longer read from disappears after this long, should its deletion have failed. */
export const READ_CONSUMER_INACTIVE_MS = 10_000;

const managers = new WeakMap<JetStreamClient, Promise<JetStreamManager>>();

function managerOf(js: JetStreamClient): Promise<JetStreamManager> {
  let jsm = managers.get(js);
  if (!jsm) {
    // No API check: the client already talks to JetStream.
    jsm = js.jetstreamManager(false);
    managers.set(js, jsm);
  }
  return jsm;
}

/**
 * Every message of `stream` matching `filter` (stored before the call; one stored while it runs may be
 * included), in stream order.
 *
 * @example
 * ```ts
 * const history = await readStream(js, "EVENTS", `compozy.${correlationId}.*.evts.*.*`);
 * ```
 */
export async function readStream(
  js: JetStreamClient,
  stream: string,
  filter: string,
  options: ReadStreamOptions = {},
): Promise<StreamMessage[]> {
  const walkLimit = options.walkLimit ?? 64;
  const jsm = await managerOf(js);
  const messages: StreamMessage[] = [];
  let seq = Math.max(1, options.fromSeq ?? 1);
  while (true) {
    options.signal?.throwIfAborted();
    if (messages.length >= walkLimit) {
      messages.push(...await readWithConsumer(js, jsm, stream, filter, seq, options.signal));
      break;
    }
    const query = { next_by_subj: filter, seq } as unknown as MsgRequest;
    const stored = await jsm.streams.getMessage(stream, query);
    if (!stored) break;
    messages.push({
      seq: stored.seq,
      subject: stored.subject,
      data: stored.data,
      time: stored.time,
      headers: stored.header,
    });
    seq = stored.seq + 1;
  }
  return messages;
}

/** The sequence of the newest message on `subject` (a literal subject: looked up, not scanned). */
export async function lastSequenceOf(
  js: JetStreamClient,
  stream: string,
  subject: string,
): Promise<number | undefined> {
  const stored = await (await managerOf(js)).streams.getMessage(stream, { last_by_subj: subject });
  return stored?.seq;
}

/** The rest of a long read, from `startSeq`, through one short-lived consumer. */
async function readWithConsumer(
  js: JetStreamClient,
  jsm: JetStreamManager,
  stream: string,
  filter: string,
  startSeq: number,
  signal?: AbortSignal,
): Promise<StreamMessage[]> {
  const info = await jsm.consumers.add(stream, {
    filter_subject: filter,
    deliver_policy: DeliverPolicy.StartSequence,
    opt_start_seq: startSeq,
    ack_policy: AckPolicy.None,
    inactive_threshold: nanos(READ_CONSUMER_INACTIVE_MS),
    mem_storage: true,
    num_replicas: 1,
  });
  try {
    const consumer = await js.consumers.get(stream, info.name);
    const messages: StreamMessage[] = [];
    let remaining = info.num_pending;
    while (remaining > 0) {
      signal?.throwIfAborted();
      const batch = await consumer.fetch({ max_messages: Math.min(remaining, 1_000), expires: 2_000 });
      const before = messages.length;
      for await (const msg of batch) {
        messages.push({
          seq: msg.seq,
          subject: msg.subject,
          data: msg.data,
          time: new Date(msg.timestamp),
          headers: msg.headers,
        });
        remaining = msg.info.pending;
      }
      if (messages.length === before) break;
    }
    return messages;
  } finally {
    await jsm.consumers.delete(stream, info.name).catch((error) => {
      // The inactivity threshold removes it shortly; say why it outlived the read.
      log.warn("Could not delete read consumer {consumer} of {stream}: {error}", {
        consumer: info.name,
        stream,
        error,
      });
    });
  }
}
