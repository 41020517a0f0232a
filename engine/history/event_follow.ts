/**
 * Follows one execution's events live: the stored ones first, then each as it is recorded, in stream order,
 * through an ordered consumer on the EVENTS stream. The follow either runs until it is stopped or reports,
 * once, why it ended (EventFollowLostError): it never goes quiet without a word.
 *
 * The ordered consumer recreates itself when only it was removed (a NATS restart or reconnect drops it, an
 * operator deletes it): the follow goes on from the last event it delivered. Without the stream it would
 * retry for ever and deliver nothing, so a deleted EVENTS stream ends the follow.
 *
 * The receiver holds the follow back by returning a promise (back-pressure): the follow then gives its
 * consumer up and makes another from the next sequence once the promise settles. Holding the consumer's
 * iterator instead would not bound anything: the library keeps re-pulling on every missed heartbeat while
 * the iterator waits, and sends every one of those pulls at once when it runs again.
 *
 * @module
 */
import {
  type Consumer,
  type ConsumerMessages,
  DeliverPolicy,
  JetStreamApiCodes,
  JetStreamApiError,
  type JetStreamClient,
} from "@nats-io/jetstream";
import { CONSUME_EXPIRES_MS, CONSUME_HEARTBEAT_MS, STREAMS } from "../../pkg/nats/mod.ts";
import { getLogger } from "../../pkg/logger/mod.ts";
import { EventFollowLostError } from "../errors.ts";
import { isFenced, type LeaseFence, raiseFence } from "./lease_fence.ts";
import { type StoredEvent, storedEvent } from "./read_history.ts";

const log = getLogger(["engine", "events"]);

/** What the consumer's status reports when the consumer, or the stream under it, is gone. */
const GONE = new Set(["consumer_deleted", "consumer_not_found", "stream_not_found"]);

export interface EventFollow {
  /** Stops the follow; `onLost` is not called after it. */
  stop(): void;
}

/**
 * What the receiver of a follow is handed each event with: nothing when it can take more now, or a promise
 * that settles once it can (the follow pulls nothing meanwhile).
 */
export type EventReceiver = (event: StoredEvent) => void | Promise<void>;

/** Events pulled at a time: what a held-back follow may have in hand beyond what its receiver took. */
const FOLLOW_BATCH = 64;

/**
 * Follows `execId`'s events (of the run `correlationId`): `onEvent` for each, in order, a paused engine's
 * late write after a take-over left out as the replay leaves it out; `onLost` at most once, if the follow
 * ends before `stop`.
 */
export async function followEvents(
  js: JetStreamClient,
  correlationId: string,
  execId: string,
  onEvent: EventReceiver,
  onLost: (error: EventFollowLostError) => void,
): Promise<EventFollow> {
  const filter = `compozy.${correlationId}.*.evts.*.*`;
  let ended = false;
  let current = await openConsumer(js, filter, 0);
  const lose = (reason: string, cause?: unknown) => {
    if (ended) return;
    ended = true;
    current.messages.stop();
    onLost(new EventFollowLostError(execId, reason, { cause }));
  };
  const release = (opened: OpenConsumer) => {
    opened.messages.stop();
    opened.consumer.delete().catch((error) => {
      // Gone already (its stream deleted, or removed on a reconnect): nothing to clean up. Else the server
      // removes it after its inactivity threshold; said, not dropped.
      if (!isNotFound(error)) {
        log.warn("Could not delete the event consumer of execution {execId}: {error}", { execId, error });
      }
    });
  };
  (async () => {
    const position: FollowPosition = { nextSeq: 0 };
    while (true) {
      watchStatus(js, current.messages, lose);
      const held = await deliver(current.messages, execId, onEvent, position);
      if (ended) return;
      // Not held back, not stopped by us: the connection closed under it (the library ends the iterator
      // without an error).
      if (!held) return lose("the NATS connection closed");
      release(current);
      await held.until;
      if (ended) return;
      current = await openConsumer(js, filter, position.nextSeq);
      if (ended) return release(current);
    }
  })().catch((error) =>
    lose(`the event consumer failed: ${error instanceof Error ? error.message : String(error)}`, error)
  );
  return {
    stop() {
      if (ended) return;
      ended = true;
      release(current);
    },
  };
}

interface OpenConsumer {
  consumer: Consumer;
  messages: ConsumerMessages;
}

/** An ordered consumer of `filter` from `startSeq` (0: from the first event), consuming. */
async function openConsumer(js: JetStreamClient, filter: string, startSeq: number): Promise<OpenConsumer> {
  const consumer = await js.consumers.get(
    STREAMS.events,
    startSeq > 0
      ? { filter_subjects: filter, deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: startSeq }
      : { filter_subjects: filter, deliver_policy: DeliverPolicy.All },
  );
  // The durable consumers' pull life and heartbeat: with the library's defaults (30 s pulls, a heartbeat
  // every 15 s) an ordered consumer deleted under the follow was noticed, and made again, only ~90 s later.
  const messages = await consumer.consume({
    max_messages: FOLLOW_BATCH,
    expires: CONSUME_EXPIRES_MS,
    idle_heartbeat: CONSUME_HEARTBEAT_MS,
  });
  return { consumer, messages };
}

/** Where a follow is: the next stream sequence to read, and the fence of what it handed over so far. */
interface FollowPosition {
  nextSeq: number;
  fence?: LeaseFence;
}

/**
 * Hands `messages` over until the iterator ends (undefined) or the receiver holds the follow back (until
 * what it returned settles; wrapped, or the async return would wait for it).
 */
async function deliver(
  messages: ConsumerMessages,
  execId: string,
  onEvent: EventReceiver,
  position: FollowPosition,
): Promise<{ until: Promise<void> } | undefined> {
  for await (const msg of messages) {
    position.nextSeq = msg.seq + 1;
    const event = storedEvent(
      { seq: msg.seq, subject: msg.subject, data: msg.data, time: new Date(msg.timestamp) },
      "live follow",
    );
    if (!event) continue;
    if ((event.message as { workflow?: { execId: string } }).workflow?.execId !== execId) continue;
    if (isFenced(position.fence, event)) continue;
    position.fence = raiseFence(position.fence, event);
    const heldBack = onEvent(event);
    if (heldBack) return { until: heldBack };
  }
  return undefined;
}

/** Ends the follow (`lose`) once the consumer's status says it is gone and the EVENTS stream is gone too. */
function watchStatus(
  js: JetStreamClient,
  messages: ConsumerMessages,
  lose: (reason: string, cause?: unknown) => void,
): void {
  let checking = false;
  (async () => {
    for await (const status of messages.status()) {
      if (!GONE.has(status.type) || checking) continue;
      checking = true;
      streamExists(js).then(
        (exists) => {
          if (!exists) {
            lose(`the ${STREAMS.events} stream was deleted (the consumer reported ${status.type})`);
          }
        },
        (error) =>
          // Unknown (NATS unreachable a moment): the consumer keeps trying and reports again.
          log.warn("After {status}, could not check the {stream} stream: {error}", {
            status: status.type,
            stream: STREAMS.events,
            error,
          }),
      ).finally(() => checking = false);
    }
  })().catch((error) => lose("its consumer's status could not be read", error));
}

async function streamExists(js: JetStreamClient): Promise<boolean> {
  try {
    await js.streams.get(STREAMS.events);
    return true;
  } catch (error) {
    if (error instanceof JetStreamApiError && error.code === JetStreamApiCodes.StreamNotFound) return false;
    throw error;
  }
}

function isNotFound(error: unknown): boolean {
  return error instanceof JetStreamApiError &&
    (error.code === JetStreamApiCodes.StreamNotFound || error.code === JetStreamApiCodes.ConsumerNotFound);
}
