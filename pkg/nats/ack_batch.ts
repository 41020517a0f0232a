/**
 * Acknowledgements of JetStream deliveries, sent with the connection's next write instead of one write each.
 *
 * nats-core writes what a microtask queued at its end, so an ack sent on its own (a history event the state
 * consumer acknowledges unread, a fold's events once written) is one `write` system call, and one read in
 * nats-server, for 40 bytes. Per step of a workflow that was five acks in three to five writes of the
 * engine's ~9 (strace, 2026-12-03), and the socket write was 24% of the engine's CPU under W1. An ack waits
 * here until anything else goes out on the connection (it is appended to that write) or {@link ACK_BATCH_MS}
 * passes. Nothing waits for an ack: a later ack only keeps the message pending a little longer (the ack
 * wait is seconds), and an ack lost with a dying process is a redelivery, which every consumer takes
 * (at-least-once, ARCHITECTURE.md "Durability"). Naks and terms are not held: they ask for something.
 *
 * @module
 */
import type { JsMsg } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";

/** The longest an ack waits for another write to ride on. */
export const ACK_BATCH_MS = 20;

interface Flushing {
  flushPending(): void;
}

const batches = new WeakMap<NatsConnection, AckBatch>();

/** The batch of `nc` (one per connection: every consumer on it shares its writes). */
export function ackBatchOf(nc: NatsConnection, maxDelayMs = ACK_BATCH_MS): AckBatch {
  let batch = batches.get(nc);
  if (!batch) batches.set(nc, batch = new AckBatch(nc, maxDelayMs));
  return batch;
}

export class AckBatch {
  private pending: JsMsg[] = [];
  private timer?: ReturnType<typeof setTimeout>;

  constructor(nc: NatsConnection, private readonly maxDelayMs: number) {
    // nats-core's ProtocolHandler drains its outbound buffer in flushPending (once per microtask that sent
    // something): the held acks join that buffer first. Without that hook (another client version) the
    // timer alone sends them.
    const protocol = (nc as unknown as { protocol?: Flushing }).protocol;
    if (protocol && typeof protocol.flushPending === "function") {
      const flush = protocol.flushPending;
      const send = () => this.sendNow();
      protocol.flushPending = function (this: Flushing) {
        send();
        flush.call(this);
      };
    }
    nc.closed().then(() => this.clearTimer(), () => this.clearTimer());
  }

  /** Acknowledges `msg` with the connection's next write, or within maxDelayMs. */
  ack(msg: JsMsg): void {
    this.pending.push(msg);
    if (this.timer === undefined) {
      this.timer = setTimeout(() => {
        this.timer = undefined;
        this.sendNow();
      }, this.maxDelayMs);
    }
  }

  /** How many acks are held. */
  get size(): number {
    return this.pending.length;
  }

  /** Sends every held ack now (a consumer that stops, a write going out). */
  sendNow(): void {
    if (this.pending.length === 0) return;
    const msgs = this.pending;
    this.pending = [];
    this.clearTimer();
    for (const msg of msgs) msg.ack();
  }

  private clearTimer(): void {
    if (this.timer === undefined) return;
    clearTimeout(this.timer);
    this.timer = undefined;
  }
}
