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
 * when this process dies before deleting it. That consumer is in memory, so a server restart deletes it: the
 * read then goes on from its last message with a new one (a bounded number of times, see readStream).
 *
 * @module
 */
import {
  AckPolicy,
  DeliverPolicy,
  JetStreamApiCodes,
  JetStreamApiError,
  type JetStreamClient,
  JetStreamError,
  type JetStreamManager,
  type MsgRequest,
} from "@nats-io/jetstream";
import { type MsgHdrs, nanos } from "@nats-io/transport-node";
import { getLogger } from "@logtape/logtape";
import { isTransientNatsError } from "./bus.ts";
import { StreamReadError } from "./errors.ts";

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
  /**
   * At most this many messages: the read stops there (a page of a long history), so that what one read
   * holds in memory is bounded. Default: every match.
   */
  limit?: number;
  /** The read also stops once the messages' data reach this many bytes (at least one message is read). */
  maxBytes?: number;
  /**
   * Messages of this filter read before, from `fromSeq` (or the stream's start) to the last one then stored,
   * oldest first: the read goes on after the last of them and returns them followed by what it found
   * (read_cache.ts). Only the messages found count against walkLimit.
   */
  known?: readonly StreamMessage[];
}

/** How many times a read's reader is re-created after it failed (see readStream). */
export const READ_RECOVERY_TRIES = 6;

/** A consumer no longer read from disappears after this long, should its deletion have failed. */
export const READ_CONSUMER_INACTIVE_MS = 10_000;

const managers = new WeakMap<JetStreamClient, Promise<JetStreamManager>>();

/** The JetStreamManager of `js`'s connection, made once per client (reads and read_cache.ts share it). */
export function streamManagerOf(js: JetStreamClient): Promise<JetStreamManager> {
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
 * A read that fails half-way because the server went away (a restart takes the read's in-memory consumer
 * along: `ConsumerNotFound`, missed heartbeats, time-outs, no responders while JetStream starts) goes on from
 * the message after the last one it read, with a new reader, after a back-off (250 ms doubling, at most 4 s).
 * After READ_RECOVERY_TRIES tries in a row without a message read, it throws StreamReadError with the last
 * failure as its cause. Other errors, and the signal's abort, end the read at once.
 *
 * @example
 * ```ts
 * const history = await readStream(js, "EVENTS", `compozy.${correlationId}.*.evts.*.*`);
 * ```
 * @throws {StreamReadError} when the reader kept failing across READ_RECOVERY_TRIES re-creations.
 */
export async function readStream(
  js: JetStreamClient,
  stream: string,
  filter: string,
  options: ReadStreamOptions = {},
): Promise<StreamMessage[]> {
  const messages: StreamMessage[] = [...options.known ?? []];
  const known = messages.length;
  let tries = 0;
  while (true) {
    const before = messages.length;
    try {
      await readInto(messages, known, js, stream, filter, options);
      return messages;
    } catch (error) {
      if (options.signal?.aborted || !isInterruption(error)) throw error;
      if (messages.length > before) tries = 0;
      if (++tries > READ_RECOVERY_TRIES) {
        throw new StreamReadError(
          `Cannot read ${stream} (${filter}): the reader failed ${READ_RECOVERY_TRIES} times in a row after ` +
            `${messages.length} messages`,
          stream,
          filter,
          READ_RECOVERY_TRIES,
          { cause: error },
        );
      }
      const delayMs = Math.min(250 * 2 ** (tries - 1), 4_000);
      log.info(
        "Read of {stream} ({filter}) interrupted after {count} messages, going on in {delay} ms: {error}",
        {
          stream,
          filter,
          count: messages.length,
          delay: delayMs,
          error,
        },
      );
      await new Promise((r) => setTimeout(r, delayMs));
    }
  }
}

/**
 * Appends to `messages` what matches after the last message in it (or from `fromSeq`), to the end. The first
 * `known` messages were given by the caller: they do not count as walked.
 */
async function readInto(
  messages: StreamMessage[],
  known: number,
  js: JetStreamClient,
  stream: string,
  filter: string,
  options: ReadStreamOptions,
): Promise<void> {
  const walkLimit = options.walkLimit ?? 64;
  const jsm = await streamManagerOf(js);
  const last = messages.at(-1);
  const bound = { limit: options.limit ?? Infinity, maxBytes: options.maxBytes ?? Infinity };
  let seq = last ? last.seq + 1 : Math.max(1, options.fromSeq ?? 1);
  // The stream's last sequence when the consumer started: the read ends there, not on the consumer's
  // pending count (see readWithConsumer). Unknown while the read walks.
  let endSeq: number | undefined;
  while (!full(messages, bound)) {
    options.signal?.throwIfAborted();
    if (endSeq === undefined && messages.length - known >= walkLimit) {
      endSeq = (await jsm.streams.info(stream)).state.last_seq;
      if (seq > endSeq) return;
      if (await readWithConsumer(messages, js, jsm, stream, filter, seq, endSeq, bound, options.signal)) {
        return;
      }
      seq = Math.max(seq, (messages.at(-1)?.seq ?? 0) + 1);
      // What follows walks on from the consumer's last message, one get at a time: only when a fetch of the
      // consumer delivered nothing, or the read is full.
      continue;
    }
    const query = { next_by_subj: filter, seq } as unknown as MsgRequest;
    const stored = await jsm.streams.getMessage(stream, query);
    if (!stored || (endSeq !== undefined && stored.seq > endSeq)) return;
    readStreamCounts.singleGets++;
    messages.push({
      seq: stored.seq,
      subject: stored.subject,
      data: stored.data,
      time: stored.time,
      headers: stored.header,
    });
    seq = stored.seq + 1;
  }
}

interface ReadBound {
  limit: number;
  maxBytes: number;
}

/** Whether a read holds as many messages, or bytes, as it may. */
function full(messages: StreamMessage[], bound: ReadBound): boolean {
  if (messages.length >= bound.limit) return true;
  if (bound.maxBytes === Infinity) return false;
  let bytes = 0;
  for (const message of messages) bytes += message.data.byteLength;
  return bytes >= bound.maxBytes;
}

/**
 * A failure of the server's side of a read that a new reader may not meet: its consumer gone (deleted by a
 * restart, `ConsumerNotFound`, or missing its heartbeats), or the server away for a moment.
 */
function isInterruption(error: unknown): boolean {
  if (isTransientNatsError(error)) return true;
  if (error instanceof JetStreamApiError) return error.code === JetStreamApiCodes.ConsumerNotFound;
  return error instanceof JetStreamError && /heartbeats missed|consumer deleted/i.test(error.message);
}

/** The sequence of the newest message on `subject` (see lastMessageOf). */
export async function lastSequenceOf(
  js: JetStreamClient,
  stream: string,
  subject: string,
): Promise<number | undefined> {
  return (await lastMessageOf(js, stream, subject))?.seq;
}

/**
 * The newest message on `subject`, if the stream holds one: a literal subject is looked up; a wildcard (a
 * run's records) is the newest match, whatever nats-server 2.9's per-subject state order.
 */
export async function lastMessageOf(
  js: JetStreamClient,
  stream: string,
  subject: string,
): Promise<StreamMessage | undefined> {
  const stored = await (await streamManagerOf(js)).streams.getMessage(stream, { last_by_subj: subject });
  return stored
    ? {
      seq: stored.seq,
      subject: stored.subject,
      data: stored.data,
      time: stored.time,
      headers: stored.header,
    }
    : undefined;
}

/**
 * How many messages to fetch next under a byte bound: a batch is fetched whole, so it is sized by the mean
 * size of the messages read so far to end near the bound (one message while nothing tells their size).
 */
function batchWithin(bytesLeft: number, bytesRead: number, messagesRead: number): number {
  if (messagesRead === 0 || bytesRead === 0) return 1;
  return Math.min(1_000, Math.max(1, Math.ceil(bytesLeft / (bytesRead / messagesRead))));
}

/** How long one fetch of a read's consumer may wait for its batch on the server. */
const FETCH_EXPIRES_MS = 2_000;

/**
 * How long a fetch goes without a message before the read checks, with one get, whether anything is left up
 * to its end sequence (see readWithConsumer).
 */
const FETCH_STALL_MS = 100;

/**
 * Counts of this process's reads through a consumer, for tests and figures: `fetchesExpired` are fetches that
 * ended at their expiry with fewer messages than asked (each a wait of FETCH_EXPIRES_MS), `stallChecks` the
 * gets made when a fetch stalled, `endedOnStall` the reads such a get found complete.
 */
export const readStreamCounts = {
  consumerReads: 0,
  fetchesExpired: 0,
  stallChecks: 0,
  endedOnStall: 0,
  /** Gets made because the consumer's pending count ran out before the end sequence. */
  countChecks: 0,
  /** Messages a read took by single gets (`next_by_subj`), one round trip each. */
  singleGets: 0,
};

/**
 * Most of the rest of a long read, from `startSeq` up to `endSeq`, through one short-lived consumer, appended
 * to `messages`. nats-server 2.9's pending count of a consumer with a wildcard filter is wrong, either way,
 * even on a stream no one writes to: off by a few (outside review D4: 59-63 of 64 events), and by thousands
 * from a start past some matching subject's last message (it is summed in a Go map's order: 1600 or 2500 of
 * 3400). The count only sizes the batches; what the consumer delivers is right. A count run out before
 * endSeq is checked with one get (`last_by_subj`, the filter's last match): none after the last message
 * delivered ends the read, else the read goes on through the consumer up to that match (or endSeq, if the
 * match came later), rather than leaving the rest to single gets or a stalled fetch. A count too high asks a
 * fetch for messages that do not exist, and the fetch would wait out its expiry (2 s) at the end of the read;
 * so a batch stops at once on a message at or past endSeq, and when it has delivered nothing for
 * FETCH_STALL_MS the same get tells whether any match is left: none ends the read, one keeps waiting.
 *
 * @returns whether every match up to endSeq was delivered (the caller then need not look further).
 */
async function readWithConsumer(
  messages: StreamMessage[],
  js: JetStreamClient,
  jsm: JetStreamManager,
  stream: string,
  filter: string,
  startSeq: number,
  endSeq: number,
  bound: ReadBound,
  signal?: AbortSignal,
): Promise<boolean> {
  readStreamCounts.consumerReads++;
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
    let bytes = 0;
    for (const message of messages) bytes += message.data.byteLength;
    // At most one match per sequence up to endSeq: a pending count above that would only make a fetch wait.
    let pending = Math.min(info.num_pending, endSeq - startSeq + 1);
    let lastSeq = startSeq - 1;
    // The read ends on this sequence: endSeq, or once the count ran out, the last match stored up to endSeq.
    let lastMatchSeq = endSeq;
    while (lastSeq < lastMatchSeq && messages.length < bound.limit && bytes < bound.maxBytes) {
      signal?.throwIfAborted();
      if (pending <= 0) {
        readStreamCounts.countChecks++;
        // The last match, not the next: a batch then ends on it rather than stalling when other subjects'
        // messages follow the read's last match (every history read in a stream other runs write to).
        const last = await lastSequenceOf(js, stream, filter);
        if (last === undefined || last <= lastSeq) return true;
        lastMatchSeq = Math.min(endSeq, last);
        // At most one match per sequence left: a batch asking too many ends on that last match.
        pending = lastMatchSeq - lastSeq;
      }
      const batchSize = bound.maxBytes === Infinity
        ? 1_000
        : batchWithin(bound.maxBytes - bytes, bytes, messages.length);
      const asked = Math.min(pending, bound.limit - messages.length, batchSize);
      const batch = await consumer.fetch({ max_messages: asked, expires: FETCH_EXPIRES_MS });
      const delivered = messages.length;
      let received = 0;
      try {
        const iterator = batch[Symbol.asyncIterator]();
        let next = iterator.next();
        while (true) {
          const result = await withinStall(next);
          if (result === "stalled") {
            readStreamCounts.stallChecks++;
            const query = { next_by_subj: filter, seq: lastSeq + 1 } as unknown as MsgRequest;
            const left = await jsm.streams.getMessage(stream, query);
            if (!left || left.seq > endSeq) {
              readStreamCounts.endedOnStall++;
              return true;
            }
            continue;
          }
          if (result.done) break;
          const msg = result.value;
          received++;
          lastSeq = msg.seq;
          // Stored after the read started: the read ends before it.
          if (msg.seq > endSeq) return true;
          messages.push({
            seq: msg.seq,
            subject: msg.subject,
            data: msg.data,
            time: new Date(msg.timestamp),
            headers: msg.headers,
          });
          bytes += msg.data.byteLength;
          if (msg.seq >= lastMatchSeq) return true;
          pending = Math.min(msg.info.pending, lastMatchSeq - msg.seq);
          next = iterator.next();
        }
      } finally {
        // A batch left early (complete, or a failure) is not waited for: the consumer is deleted below.
        batch.stop();
      }
      if (received < asked) readStreamCounts.fetchesExpired++;
      if (messages.length === delivered) break;
    }
    return false;
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

const notYet = Symbol("not yet");

/**
 * The next result of a batch, or "stalled" when none came within FETCH_STALL_MS. Racing `next` also marks it
 * handled, so a batch stopped with an error after its read moved on raises no unhandled rejection.
 */
async function withinStall<T>(next: Promise<T>): Promise<T | "stalled"> {
  // Most messages of a batch are already there: taken without a timer (one per message cost ~15% of reads/s).
  const ready = await Promise.race([next, Promise.resolve(notYet)]);
  if (ready !== notYet) return ready as T;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const stall = new Promise<"stalled">((resolve) => {
    timer = setTimeout(() => resolve("stalled"), FETCH_STALL_MS);
  });
  try {
    return await Promise.race([next, stall]);
  } finally {
    clearTimeout(timer);
  }
}
