/**
 * The sandboxes' `--deny-net` list follows the NATS servers this runtime may connect to. At start it names
 * the servers of the URL and those the cluster announced by then; but a server that joins later is announced
 * to the client afterwards (an INFO update: nats.js adds it to its pool and may reconnect to it), and a
 * server named by host that comes back on another address is reached again by a reconnect. Either way a tool
 * with `net: true` could connect to a bus address its deny list did not name (outside break attempt brk37).
 * So the list is made again from the client's pool at every update and reconnect, names resolved anew, and
 * never loses an entry (an old address may still be served); a warm sandbox spawned under an older list is
 * retired before its next call (ToolRunner). The second lock on the bus, its authentication, is unchanged.
 *
 * @module
 */
import type { NatsConnection } from "@nats-io/transport-node";
import { getLogger } from "@logtape/logtape";
import { configureNetDeny, type NetTarget } from "./net_deny.ts";

const log = getLogger(["compozy", "runtime", "sandbox"]);

/**
 * Denies every server in `nc`'s pool and `extra` to sandboxes now, and again whenever the pool may have
 * changed, until `nc` closes. Resolves once the first list is in force; throws as configureNetDeny does.
 */
export async function denyNatsServers(nc: NatsConnection, extra: readonly NetTarget[]): Promise<void> {
  const apply = () => configureNetDeny([...poolTargets(nc), ...extra], { keep: true });
  await apply();
  (async () => {
    for await (const status of nc.status()) {
      if (status.type !== "update" && status.type !== "reconnect") continue;
      try {
        await apply();
      } catch (e) {
        // The entries in force stay: a name that does not resolve now cannot be reached by a tool either.
        log.error("Could not deny the NATS servers to sandboxes after a {change}: {error}", {
          change: status.type,
          error: e,
        });
      }
    }
  })();
}

/** The servers the client may connect to: those of its URL and those the cluster announced. */
function poolTargets(nc: NatsConnection): NetTarget[] {
  return nc.getServers().map((server) => ({ host: server.hostname, port: server.port }));
}
