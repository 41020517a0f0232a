/**
 * Whether this process's NATS connection is up right now. The client reconnects on its own and buffers
 * meanwhile, so without this a request during an outage would wait for its whole deadline; with it, routes
 * that need NATS answer 503 at once and health says NATS is down.
 *
 * @module
 */
import type { NatsConnection } from "@nats-io/transport-node";

export interface NatsLink {
  readonly connected: boolean;
  /** Why it is down, for health reports. */
  readonly detail: string;
  stop(): void;
}

/** Follows the connection's status events. */
export function watchNatsLink(nc: NatsConnection): NatsLink {
  let connected = !nc.isClosed();
  let detail = "connected";
  let stopped = false;
  (async () => {
    for await (const status of nc.status()) {
      if (stopped) return;
      if (status.type === "disconnect") {
        connected = false;
        detail = `disconnected at ${new Date().toISOString()}; reconnecting`;
      } else if (status.type === "reconnect") {
        connected = true;
        detail = "connected";
      } else if (status.type === "close") {
        connected = false;
        detail = "connection closed";
      }
    }
  })().catch(() => {});
  return {
    get connected() {
      return connected && !nc.isClosed();
    },
    get detail() {
      return nc.isClosed() ? "connection closed" : detail;
    },
    stop() {
      stopped = true;
    },
  };
}
