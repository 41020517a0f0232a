/** Connecting to NATS: one place decides the reconnect policy, so every component survives a server restart. */
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { NatsUnavailableError } from "./errors.ts";

export interface ConnectOptions {
  /** Client name shown by the server's monitoring. */
  name?: string;
  /** How long to keep trying the first connection; default 5 s. */
  connectTimeoutMs?: number;
}

/**
 * Connects with reconnects forever: after the first connection, an outage pauses the client instead of
 * closing it, and subscriptions and consumers resume when the server is back.
 */
export async function connectNats(url: string, options: ConnectOptions = {}): Promise<NatsConnection> {
  const deadline = Date.now() + (options.connectTimeoutMs ?? 5_000);
  let lastError: unknown;
  while (Date.now() < deadline) {
    try {
      return await connect({
        servers: url,
        name: options.name,
        maxReconnectAttempts: -1,
        reconnectTimeWait: 100,
        reconnectJitter: 50,
        pingInterval: 5_000,
        timeout: Math.max(250, Math.min(2_000, deadline - Date.now())),
      });
    } catch (e) {
      lastError = e;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  const reason = lastError instanceof Error ? lastError.message : String(lastError);
  throw new NatsUnavailableError(
    `Cannot connect to NATS at ${url}: ${reason}. Is nats-server running (with -js)? ` +
      `Unset NATS_URL to let Compozy start a managed server.`,
    url,
    { cause: lastError },
  );
}
