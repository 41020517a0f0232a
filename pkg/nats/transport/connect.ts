/** `connect()` as transport-node exports it, on the Deno-native transport (deno_transport.ts says why). */
import type { ConnectionOptions, NatsConnection } from "@nats-io/nats-core";
import { NatsConnectionImpl, setTransportFactory } from "@nats-io/nats-core/internal";
import { lookup } from "node:dns/promises";
import { DenoTransport } from "./deno_transport.ts";
import "./deadline_request.ts";

/**
 * nats-core keeps one transport factory per process and calls it on every dial, reconnects included; all
 * our connections use this one, so setting it on each connect (as the stock transports do) is idempotent.
 */
export function connect(options: ConnectionOptions): Promise<NatsConnection> {
  setTransportFactory({ factory: () => new DenoTransport(), dnsResolveFn: resolveHost });
  return NatsConnectionImpl.connect(options);
}

/**
 * A host name's addresses, for nats-core to try each in turn. The system resolver (getaddrinfo) rather than
 * Deno.resolveDns, which asks DNS servers only and so would not know `localhost` or /etc/hosts names.
 */
async function resolveHost(host: string): Promise<string[]> {
  const found = await lookup(host, { all: true });
  return found.length ? found.map((a) => a.address) : [host];
}
