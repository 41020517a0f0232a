/**
 * Waiting for an execution's end without polling. The state manager writes an execution's document to the
 * KV subject `$KV.<bucket>.<exec id>`; a plain core NATS subscription on that subject sees every write as it
 * is stored, with no consumer to create on the server. The watch subscribes first, makes sure the server
 * registered the subscription (a flush), and only then reads the document once: a write stored before the
 * subscription is in that read, one stored after it arrives on the subscription, so the end is never
 * missed. A caller that starts the execution itself subscribes before it sends the start, and reads nothing
 * (watchEnd). Core messages sent while the connection is down are lost: after a reconnect the document is
 * read once more. On a cluster, the flush tells only that this client's server has the subscription: the
 * other servers learn of it through their routes, later, and a write stored through one of them in between
 * is not forwarded here (the cluster test once waited 180 s for an execution that had ended). So a watch that
 * reads first also reads again at growing intervals (REREAD_FIRST_MS, doubling up to REREAD_MAX_MS) while it
 * waits: a missed end costs about a second, a long wait a read every 30 s. A caller that subscribes before
 * it sends the start needs none: the start reaches every server after the subscription does.
 *
 * @module
 */
import type { Msg, NatsConnection } from "@nats-io/transport-node";
import { isTerminal, type WorkflowDocument } from "./execution_state.ts";

const decoder = new TextDecoder();

/** The first read again after the first read; each later one waits twice as long, up to REREAD_MAX_MS. */
const REREAD_FIRST_MS = 1_000;
const REREAD_MAX_MS = 30_000;

export interface EndWatchOptions {
  nc: NatsConnection;
  /** The KV subject the execution's document is written to. */
  subject: string;
  /** The one read of the stored document (undefined when there is none yet). */
  read: () => Promise<WorkflowDocument | undefined>;
  /** Registers a callback run after each reconnect; returns its removal. */
  onReconnect: (wake: () => void) => () => void;
  /** Reports a read that failed (NATS down): the next reconnect reads again. */
  onReadError?: (error: unknown) => void;
}

/** A subscription on an execution's document, made before anything is asked of it (see {@link watchEnd}). */
export interface EndWatch {
  /**
   * Resolves with the document once it is terminal, or with the newest document seen when `timeoutMs` runs
   * out (read once then if none was seen). `readFirst`: writes may have been stored before the subscription
   * (an execution started elsewhere), so the server must know the subscription (a flush) and the document is
   * read once; without it, the subscription was made before the execution could be written.
   */
  until(timeoutMs: number, readFirst: boolean): Promise<WorkflowDocument | undefined>;
  stop(): void;
}

/**
 * Subscribes to the document's writes now. A caller that makes the execution itself subscribes before it
 * sends the start on the same connection: nats-server handles a connection's messages in order, so every
 * write of the execution reaches the subscription, and no flush and no read are needed (`until(…, false)`).
 */
export function watchEnd(options: EndWatchOptions): EndWatch {
  let latest: WorkflowDocument | undefined;
  let done!: () => void;
  const ended = new Promise<void>((resolve) => done = resolve);
  const offer = (doc: WorkflowDocument | undefined) => {
    if (!doc) return;
    // Writes arrive in order, and a terminal status is final: a late read never replaces an end.
    if (latest && isTerminal(latest.status)) return;
    latest = doc;
    if (isTerminal(doc.status)) done();
  };
  const read = () => options.read().then(offer, (e) => options.onReadError?.(e));
  const subscription = options.nc.subscribe(options.subject, {
    callback: (err, msg) => {
      if (!err) offer(decodeDocument(msg));
    },
  });
  const stopReconnects = options.onReconnect(() => void read());
  return {
    async until(timeoutMs, readFirst) {
      const timer = setTimeout(done, timeoutMs);
      let reread: ReturnType<typeof setTimeout> | undefined;
      const readAgainAfter = (delayMs: number) => {
        reread = setTimeout(() => {
          read();
          readAgainAfter(Math.min(delayMs * 2, REREAD_MAX_MS));
        }, delayMs);
      };
      try {
        // The read must come after the server knows the subscription, or a write between the two is lost.
        // While NATS is down the flush fails: the reconnect then reads the document.
        if (readFirst) {
          await options.nc.flush().then(read, (e) => options.onReadError?.(e));
          readAgainAfter(REREAD_FIRST_MS);
        }
        await ended;
        // Nothing arrived before the time-out (the start was refused, say): what is stored, if anything.
        if (!latest && !readFirst) await read();
      } finally {
        clearTimeout(timer);
        clearTimeout(reread);
      }
      return latest;
    },
    stop() {
      stopReconnects();
      subscription.unsubscribe();
    },
  };
}

/**
 * Resolves with the document once it is terminal, or with the newest document seen when `timeoutMs` runs
 * out (undefined if none was ever seen).
 */
export async function waitForTerminalDocument(
  options: EndWatchOptions,
  timeoutMs: number,
): Promise<WorkflowDocument | undefined> {
  const watch = watchEnd(options);
  try {
    return await watch.until(timeoutMs, true);
  } finally {
    watch.stop();
  }
}

/** The document a KV write carries; undefined for a delete or purge marker. */
function decodeDocument(msg: Msg): WorkflowDocument | undefined {
  const operation = msg.headers?.get("KV-Operation");
  if (operation === "DEL" || operation === "PURGE" || msg.data.byteLength === 0) return undefined;
  try {
    return JSON.parse(decoder.decode(msg.data)) as WorkflowDocument;
  } catch {
    return undefined; // Not a document the state manager wrote: the end comes in one of its writes.
  }
}
