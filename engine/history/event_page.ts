/**
 * One page of an execution's history, for `GET /api/executions/{id}/events?cursor=&limit=`.
 *
 * The whole history of a big execution (a collection of 100,000 items) is hundreds of MB; read and encoded
 * at once it held the API's memory and the NATS connection it shares with the engine for about a minute
 * (outside review B10). A page reads the run's events from where the previous one stopped, a bounded chunk
 * at a time, and stops at `limit` events of the execution, at {@link PAGE_BYTES} of them (each read of the run's events is bounded so too), or after
 * {@link PAGE_SCAN_FACTOR} × `limit` events of the run (a sub-workflow's page among many siblings' events):
 * what one request holds and costs is bounded whatever the history's size. The cursor says where the next
 * page starts, with the lease fence seen so far (lease_fence.ts), so that paging shows exactly the history
 * that one whole read shows, and a check that refuses a cursor not given for this execution.
 *
 * @module
 */
import { createHash } from "node:crypto";
import type { JetStreamClient } from "@nats-io/jetstream";
import { lastSequenceOf, readStream, STREAMS } from "../../pkg/nats/mod.ts";
import { isFenced, type LeaseFence, raiseFence } from "./lease_fence.ts";
import { type StoredEvent, storedEvent } from "./read_history.ts";

/** Events per page when the request names no limit. */
export const DEFAULT_PAGE_EVENTS = 1_000;
/** The largest `limit` a request may ask for. */
export const MAX_PAGE_EVENTS = 5_000;
/** A page ends early once its events' stored bytes reach this (the JSON is a few times larger). */
export const PAGE_BYTES = 4 * 1024 * 1024;
/** A page reads at most this many times `limit` events of the run before it answers with what it has. */
export const PAGE_SCAN_FACTOR = 4;
/**
 * Messages read one by one before a consumer reads the rest of a chunk (see readStream): a page is long,
 * so it takes a consumer early rather than a round trip per message.
 */
const PAGE_WALK_LIMIT = 16;

/** Where a page starts: after `afterSeq`, with the fence of the events before it. */
export interface EventCursor {
  afterSeq: number;
  fence?: LeaseFence;
}

export interface StoredEventPage {
  events: StoredEvent[];
  /** Where the next page starts; undefined when the history has no more events (for now). */
  next?: EventCursor;
}

/** A cursor that {@link parseEventCursor} refuses. */
export class MalformedCursorError extends Error {
  override name = "MalformedCursorError";
}

/**
 * What a cursor looks like: `<seq>[.<fence revision>.<fence seq>].<check>` (15 digits at most: always a safe
 * integer; the check is 16 hex digits).
 */
export const EVENT_CURSOR_PATTERN = /^([0-9]{1,15})(?:\.([0-9]{1,15})\.([0-9]{1,15}))?\.([0-9a-f]{16})$/;

/**
 * The check that binds a cursor to the execution it was given for and to its values: a well-formed cursor
 * the API did not give (`1`, an edited sequence or fence, another execution's) would read from a place no
 * page stops at, or with a fence that hides or shows the wrong events, and answer a plausible page of a
 * history that is not the execution's. A hash, not a secret: it catches mistakes, not a client that
 * computes it on purpose (who could read the stream itself anyway).
 */
function cursorCheck(execId: string, values: string): string {
  return createHash("sha256").update(`compozy-event-cursor|${execId}|${values}`).digest("hex").slice(0, 16);
}

/** The cursor as the API hands it out for `execId`'s history. */
export function formatEventCursor(execId: string, cursor: EventCursor): string {
  const values = cursor.fence
    ? `${cursor.afterSeq}.${cursor.fence.revision}.${cursor.fence.seq}`
    : String(cursor.afterSeq);
  return `${values}.${cursorCheck(execId, values)}`;
}

/**
 * @throws {MalformedCursorError} for anything {@link formatEventCursor} cannot have written for `execId`.
 */
export function parseEventCursor(execId: string, text: string): EventCursor {
  const match = EVENT_CURSOR_PATTERN.exec(text);
  const values = match ? text.slice(0, text.lastIndexOf(".")) : "";
  if (!match || cursorCheck(execId, values) !== match[4]) {
    throw new MalformedCursorError(
      `The cursor '${text.slice(0, 64)}' is not one this API gave for execution ${execId}: ` +
        "pass the next_cursor of the previous page of this execution's history as it is",
    );
  }
  const [afterSeq, revision, seq] = match.slice(1, 4).map((n) => n === undefined ? undefined : Number(n));
  return revision === undefined
    ? { afterSeq: afterSeq! }
    : { afterSeq: afterSeq!, fence: { revision, seq: seq! } };
}

/**
 * The events of `execId` (of the run `correlationId`) after the cursor, in stream order, without the late
 * writes of an engine that lost the lease. Without a cursor, from the run's start.
 */
export async function readEventPage(
  js: JetStreamClient,
  correlationId: string,
  execId: string,
  cursor: EventCursor | undefined,
  limit: number,
): Promise<StoredEventPage> {
  const fromSeq = cursor ? cursor.afterSeq + 1 : await lastSequenceOf(
    js,
    STREAMS.events,
    `compozy.${correlationId}.workflow.evts.${correlationId}.started`,
  );
  let fence = cursor?.fence;
  let seq = fromSeq ?? 1;
  let scanned = 0;
  let bytes = 0;
  const events: StoredEvent[] = [];
  while (true) {
    // One read serves a page whose events are mostly the execution's own (one read, one consumer at most);
    // a sub-workflow's page among its parent's events takes a few, up to the scan's bound.
    const chunkLimit = Math.min(limit - events.length, limit * PAGE_SCAN_FACTOR - scanned);
    const chunkBytes = PAGE_BYTES - bytes;
    const chunk = await readStream(js, STREAMS.events, `compozy.${correlationId}.*.evts.*.*`, {
      fromSeq: seq,
      limit: chunkLimit,
      maxBytes: chunkBytes,
      walkLimit: PAGE_WALK_LIMIT,
    });
    for (const msg of chunk) {
      scanned++;
      const event = storedEvent(msg, "history page");
      if (event && (event.message as { workflow?: { execId?: string } }).workflow?.execId === execId) {
        if (!isFenced(fence, event)) {
          fence = raiseFence(fence, event);
          events.push(event);
          bytes += msg.data.byteLength;
        }
      }
      if (events.length >= limit || bytes >= PAGE_BYTES || scanned >= limit * PAGE_SCAN_FACTOR) {
        // Maybe nothing follows: the next page then says so (empty, without a cursor).
        return { events, next: { afterSeq: msg.seq, fence } };
      }
    }
    const last = chunk.at(-1);
    if (!last || (chunk.length < chunkLimit && !readFull(chunk, chunkBytes))) return { events };
    seq = last.seq + 1;
  }
}

/** Whether a read stopped at its byte bound (rather than at the stream's end). */
function readFull(chunk: { data: Uint8Array }[], maxBytes: number): boolean {
  let total = 0;
  for (const msg of chunk) total += msg.data.byteLength;
  return total >= maxBytes;
}
