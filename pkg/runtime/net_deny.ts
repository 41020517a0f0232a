/**
 * The addresses no sandbox may reach, whatever its `net` grant: the NATS servers (client, cluster and
 * monitoring ports) the runtime itself talks to. They become `--deny-net` flags of every sandbox process;
 * in Deno a deny entry wins over any allow, `--allow-net` included, and the tool's worker inherits it.
 *
 * Deno checks a host name against the deny list after resolving it (`localhost`, `127.1`,
 * `::ffff:127.0.0.1` all resolve to an entry) but the unspecified addresses `0.0.0.0` and `::` reach a
 * local listener without resolving to `127.0.0.1`, and a server bound to every interface is reachable on
 * each of the host's addresses and on every address of the loopback block. So each port is denied under every local spelling, not only its URL's.
 *
 * The runtime sets the list at start and again whenever its NATS client learns of a server or reconnects
 * (bus_deny_watch.ts); the sandbox reads it per spawn, and a warm sandbox spawned under an older list is
 * retired before its next call (ToolRunner).
 *
 * @module
 */
import { lookup } from "node:dns/promises";

export interface NetTarget {
  host: string;
  port: number;
}

/**
 * `127.0.0.0/8`: the whole loopback block reaches a server bound to `0.0.0.0` (nats-server's default), and
 * Deno maps `::ffff:127.0.0.2`, `2130706434` and `0x7f000002` to such an address before checking it; Deno's
 * deny list takes a CIDR block with a port.
 */
const LOCAL_HOSTS = ["127.0.0.1", "127.0.0.0/8", "0.0.0.0", "localhost", "[::1]", "[::]"];

let denied: readonly string[] = [];

/** The `--deny-net` flag of a sandbox process denied `entries` (see deniedNet); none when nothing is. */
export function netDenyFlags(entries: readonly string[] = denied): string[] {
  return entries.length === 0 ? [] : [`--deny-net=${entries.join(",")}`];
}

/**
 * The entries in force: the same array until the list changes, so that a process can tell by identity
 * whether it was spawned under the list in force.
 */
export function deniedNet(): readonly string[] {
  return denied;
}

/**
 * Denies `targets` to every sandbox spawned from now on: each port on every local spelling and address of
 * this host, and each non-local host under its name and resolved addresses. With `keep`, the entries in
 * force stay too (a server's old address is still denied after it moved).
 */
export async function configureNetDeny(
  targets: readonly NetTarget[],
  options: { keep?: boolean } = {},
): Promise<void> {
  const entries = new Set<string>(options.keep ? denied : []);
  const local = [...LOCAL_HOSTS, ...interfaceAddresses()];
  for (const { host, port } of targets) {
    assertPort(port);
    for (const h of local) entries.add(`${h}:${port}`);
    const bare = host.replace(/^\[|\]$/g, "");
    if (bare === "") continue;
    entries.add(`${formatHost(bare)}:${port}`);
    for (const address of await resolve(bare)) entries.add(`${formatHost(address)}:${port}`);
  }
  const next = [...entries].sort();
  if (next.length !== denied.length || next.some((entry, i) => entry !== denied[i])) denied = next;
}

/**
 * The host:port of each server in a NATS URL list (`nats://a:4222,b:4223`, credentials ignored); the
 * default port is 4222.
 */
export function natsTargets(url: string): NetTarget[] {
  return url.split(",").map((s) => s.trim()).filter(Boolean).map((server) => {
    const parsed = new URL(/^[a-z]+:\/\//i.test(server) ? server : `nats://${server}`);
    return { host: parsed.hostname, port: parsed.port ? Number(parsed.port) : 4222 };
  });
}

/** Parses `host:port` entries (COMPOZY_SANDBOX_DENY_NET), e.g. `127.0.0.1:6222,[::1]:8222`. */
export function parseNetTargets(list: string): NetTarget[] {
  return list.split(",").map((s) => s.trim()).filter(Boolean).map((entry) => {
    const match = /^(\[[^\]]*\]|[^:]*):(\d+)$/.exec(entry);
    if (!match) throw new Error(`Invalid address '${entry}' in COMPOZY_SANDBOX_DENY_NET: expected host:port`);
    return { host: match[1], port: Number(match[2]) };
  });
}

function assertPort(port: number): void {
  if (!Number.isInteger(port) || port < 1 || port > 65_535) {
    throw new Error(`Invalid port ${port} to deny to sandboxes`);
  }
}

function formatHost(host: string): string {
  return host.includes(":") ? `[${host}]` : host;
}

function interfaceAddresses(): string[] {
  return Deno.networkInterfaces().map((i) => formatHost(i.address.replace(/%.*$/, "")));
}

/** The system resolver's addresses (getaddrinfo, so /etc/hosts too): the ones Deno checks at connect. */
async function resolve(host: string): Promise<string[]> {
  if (/^[\d.]+$/.test(host) || host.includes(":") || host === "localhost") return [];
  try {
    return (await lookup(host, { all: true })).map((a) => a.address);
  } catch (e) {
    throw new Error(`Cannot resolve NATS host '${host}' to deny it to sandboxes`, { cause: e });
  }
}
