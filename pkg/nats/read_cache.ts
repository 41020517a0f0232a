/**
 * History reads that remember what they read. A read of an execution's history walks the stream with one
 * get per event (read_stream.ts): 13-14 round trips for a 3-step workflow, each crossing to the stream's
 * leader on a cluster (~100 reads/s one at a time on three nodes). The same history is read again and again
 * (each activation of an execution another engine accepted, take-overs, state repairs), and
 * EVENTS only grows: what a read found stays true. So a read of a filter this client read before asks only
 * for what follows its last message (one get when nothing was added), and checks in parallel, with one get
 * by sequence, that the first message it remembers is still stored under the same subject: a stream deleted
 * and created again, or purged, or whose oldest events expired (EVENTS keeps 30 days) past that message,
 * fails the check, and the read starts over. Nothing in Compozy deletes single messages of EVENTS; a message
 * deleted after a read (by an operator) would still be returned by the reads after it.
 *
 * What is remembered is per JetStreamClient (a new connection starts empty) and bounded: CACHE_MAX_ENTRIES
 * filters, CACHE_MAX_BYTES of message data, the least recently read dropped first.
 *
 * @module
 */
import type { JetStreamClient } from "@nats-io/jetstream";
import { readStream, streamManagerOf, type StreamMessage } from "./read_stream.ts";

/** How many filters (histories) one client remembers. */
export const CACHE_MAX_ENTRIES = 2_048;
/** How many bytes of message data one client remembers; a history of more than a quarter is not kept. */
export const CACHE_MAX_BYTES = 16 * 1024 * 1024;

export interface CachedReadOptions {
  /**
   * The first sequence that may match (readStream's fromSeq), or how to find it: a look-up (such as
   * lastSequenceOf) made only when `startAtLastOf` cannot be answered from what is remembered.
   */
  fromSeq?: number | (() => Promise<number | undefined>);
  /**
   * A literal subject matched by `filter`: when what is remembered holds a message on it, the read starts at
   * the last message on it (after the rest is read, so one stored since counts) and `fromSeq` is not looked
   * up. The read of an execution starts at its last `workflow.started`: remembered, that is one look-up
   * fewer.
   */
  startAtLastOf?: string;
  signal?: AbortSignal;
}

interface Entry {
  /** The sequence the remembered read started from: every match from there is in `messages`. */
  fromSeq: number;
  messages: StreamMessage[];
  bytes: number;
}

interface Cache {
  entries: Map<string, Entry>;
  bytes: number;
}

/** Counts for tests and figures: reads served from what was remembered, and those whose check failed. */
export const readCacheCounts = { hits: 0, misses: 0, invalidated: 0 };

const caches = new WeakMap<JetStreamClient, Cache>();

/**
 * Every message of `stream` matching `filter` from `fromSeq`, as readStream returns it (stored before the
 * call; one stored while it runs may be included), reading only what this client has not read before.
 */
export async function readStreamCached(
  js: JetStreamClient,
  stream: string,
  filter: string,
  options: CachedReadOptions = {},
): Promise<StreamMessage[]> {
  const cache = cacheOf(js);
  const key = `${stream} ${filter}`;
  const subject = options.startAtLastOf;
  const remembered = cache.entries.get(key);
  if (subject !== undefined && remembered?.messages.some((m) => m.subject === subject)) {
    const messages = await readOn(js, stream, filter, cache, key, remembered, options.signal);
    if (messages) {
      const start = messages.findLast((m) => m.subject === subject)!.seq;
      return messages.filter((m) => m.seq >= start);
    }
  }
  const fromSeq = typeof options.fromSeq === "function" ? await options.fromSeq() : options.fromSeq;
  const from = Math.max(1, fromSeq ?? 1);
  const entry = cache.entries.get(key);
  if (entry && entry.fromSeq <= from) {
    const messages = await readOn(js, stream, filter, cache, key, entry, options.signal);
    if (messages) return entry.fromSeq === from ? messages.slice() : messages.filter((m) => m.seq >= from);
  }
  readCacheCounts.misses++;
  const messages = await readStream(js, stream, filter, { fromSeq: from, signal: options.signal });
  remember(cache, key, from, messages);
  return messages;
}

/**
 * The remembered read of `entry` gone on to the end of the stream, kept in its place; undefined (and the
 * entry forgotten) when its first message is no longer stored as it was.
 */
async function readOn(
  js: JetStreamClient,
  stream: string,
  filter: string,
  cache: Cache,
  key: string,
  entry: Entry,
  signal: AbortSignal | undefined,
): Promise<StreamMessage[] | undefined> {
  const [stillStored, messages] = await Promise.all([
    isStored(js, stream, entry.messages[0]),
    readStream(js, stream, filter, { fromSeq: entry.fromSeq, known: entry.messages, signal }),
  ]);
  if (!stillStored) {
    readCacheCounts.invalidated++;
    // Unless a concurrent read has already replaced it.
    if (cache.entries.get(key) === entry) forget(cache, key);
    return undefined;
  }
  readCacheCounts.hits++;
  remember(cache, key, entry.fromSeq, messages);
  return messages;
}

/** Forgets everything `js` remembers (tests). */
export function clearReadCache(js: JetStreamClient): void {
  caches.delete(js);
}

function cacheOf(js: JetStreamClient): Cache {
  let cache = caches.get(js);
  if (!cache) {
    cache = { entries: new Map(), bytes: 0 };
    caches.set(js, cache);
  }
  return cache;
}

/** Whether `message` is still stored at its sequence under its subject (one get by sequence). */
async function isStored(js: JetStreamClient, stream: string, message: StreamMessage): Promise<boolean> {
  const stored = await (await streamManagerOf(js)).streams.getMessage(stream, { seq: message.seq });
  return stored !== null && stored.subject === message.subject;
}

/**
 * Keeps `messages` (every match from `fromSeq`) as the entry of `key`, unless a concurrent read already kept
 * more of it. An empty read is not kept: it has no message to check the next read against.
 */
function remember(cache: Cache, key: string, fromSeq: number, messages: StreamMessage[]): void {
  const current = cache.entries.get(key);
  if (
    current && current.fromSeq === fromSeq &&
    (current.messages.at(-1)?.seq ?? 0) > (messages.at(-1)?.seq ?? 0)
  ) {
    return;
  }
  forget(cache, key);
  if (messages.length === 0) return;
  // A message delivered by a consumer may be a view of a larger buffer: keep its own bytes only.
  const kept = messages.map((m) =>
    m.data.byteLength === m.data.buffer.byteLength ? m : { ...m, data: m.data.slice() }
  );
  const bytes = kept.reduce((sum, m) => sum + m.data.byteLength, 0);
  if (bytes > CACHE_MAX_BYTES / 4) return;
  cache.entries.set(key, { fromSeq, messages: kept, bytes });
  cache.bytes += bytes;
  for (const [oldest, entry] of cache.entries) {
    if (cache.entries.size <= CACHE_MAX_ENTRIES && cache.bytes <= CACHE_MAX_BYTES) break;
    cache.entries.delete(oldest);
    cache.bytes -= entry.bytes;
  }
}

function forget(cache: Cache, key: string): void {
  const entry = cache.entries.get(key);
  if (!entry) return;
  cache.entries.delete(key);
  cache.bytes -= entry.bytes;
}
