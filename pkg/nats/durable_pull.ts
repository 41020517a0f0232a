/**
 * Keeps a durable consumer delivering for as long as its owner wants it. The nats.js client re-pulls after
 * missed heartbeats, but it neither creates again a consumer the server lost nor restarts a pull loop it
 * ended (a 400 answer, an error on its inbox subscription): it only reports them on a status iterator. An
 * executor whose loop ended that way stopped serving every execution, and nothing said so (review R-E1).
 */
import { getLogger } from "@logtape/logtape";
import type { ConsumerMessages, JsMsg } from "@nats-io/jetstream";
import { errorMessage } from "./errors.ts";

const log = getLogger(["compozy", "nats", "bus"]);

/** The least time between two openings of a pull loop (a failed one is tried again after it). */
export const REOPEN_DELAY_MS = 1_000;

export interface DurablePullOptions {
  durable: string;
  /** Starts one pull loop on the durable consumer (the consumer exists). */
  open: () => Promise<ConsumerMessages>;
  /** Creates the durable consumer again with its configuration; a no-op when it exists. */
  recreate: () => Promise<void>;
  each: (msg: JsMsg) => void;
  /** True once the connection is closed for good: a loop that ends then is not opened again. */
  connectionClosed?: () => boolean;
  /** The least time between two openings of a pull loop; default {@link REOPEN_DELAY_MS}. */
  reopenDelayMs?: number;
}

export interface DurablePull {
  stop(): Promise<void>;
}

/**
 * Pulls until stopped: a pull loop that ends is opened again, a consumer the server lost is created again.
 * Openings are at least the reopen delay apart (a client that ends every loop at once, on a 400 answer to each
 * pull, is not reopened in a hot loop), and nothing is reopened once the connection is closed for good.
 */
export async function pullUntilStopped(options: DurablePullOptions): Promise<DurablePull> {
  const { durable } = options;
  const delayMs = options.reopenDelayMs ?? REOPEN_DELAY_MS;
  let stopping = false;
  let wakeFromDelay: (() => void) | undefined;
  let openedAt = Date.now();
  let session = await options.open();
  watchStatus(durable, session, options.recreate);

  /** Waits `ms`, or less if stop() comes meanwhile. */
  const pause = (ms: number) =>
    new Promise<void>((resolve) => {
      if (stopping || ms <= 0) return resolve();
      const timer = setTimeout(resolve, ms);
      wakeFromDelay = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  const over = () => stopping || options.connectionClosed?.() === true;

  const reopen = async (): Promise<ConsumerMessages | undefined> => {
    while (!over()) {
      await pause(openedAt + delayMs - Date.now());
      if (over()) break;
      openedAt = Date.now();
      try {
        await options.recreate();
        const next = await options.open();
        watchStatus(durable, next, options.recreate);
        return next;
      } catch (error) {
        if (over()) break;
        log.error("Consumer {durable} could not pull again: {error}; retrying", {
          durable,
          error: errorMessage(error),
        });
      }
    }
    return undefined;
  };

  const loop = (async () => {
    while (true) {
      let failure: unknown;
      try {
        for await (const msg of session) options.each(msg);
      } catch (error) {
        failure = error;
      }
      if (stopping) return;
      if (over()) {
        log.warn("Consumer {durable} stopped pulling: its NATS connection is closed", { durable });
        return;
      }
      const reason = failure ?? await session.closed();
      log.error("Consumer {durable} stopped pulling ({reason}); pulling again", {
        durable,
        reason: reason ? errorMessage(reason) : "the client ended its pull loop",
      });
      const next = await reopen();
      if (!next) return;
      session = next;
      // A stop that came while the new loop was opening closed the old one only.
      if (stopping) {
        await session.close();
        return;
      }
    }
  })();

  return {
    async stop() {
      stopping = true;
      wakeFromDelay?.();
      await session.close();
      await loop;
    },
  };
}

/** Logs what may stall a pull loop; a consumer the server lost is created again (the client only re-pulls). */
async function watchStatus(
  durable: string,
  messages: ConsumerMessages,
  recreate: () => Promise<void>,
): Promise<void> {
  for await (const status of messages.status()) {
    switch (status.type) {
      case "heartbeats_missed":
        log.warn("Consumer {durable} missed {count} heartbeats; pulling again", {
          durable,
          count: status.count,
        });
        break;
      case "consumer_not_found":
        // Once may be a restarting server that has not restored its consumers yet: a consumer created then
        // would replace the restored one and deliver its stream again from the start.
        if (status.count < 2) {
          log.warn("Consumer {durable}: {status}", { durable, status: status.type });
          break;
        }
        /* falls through */
      case "consumer_deleted":
        log.warn("Consumer {durable}: {status}; creating it again", { durable, status: status.type });
        await recreate().catch((error) =>
          log.warn("Consumer {durable} could not be created again yet: {error}", {
            durable,
            error: errorMessage(error),
          })
        );
        break;
      case "stream_not_found":
      case "no_responders":
        log.warn("Consumer {durable}: {status}", { durable, status: status.type });
        break;
    }
  }
}
