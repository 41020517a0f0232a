/**
 * A real nats-server for integration tests, on a free loopback port with its own store directory, configured
 * by the same module as `compozy dev` (pkg/nats/auth.ts): anonymous clients are refused and each role has its
 * user. `url` carries a test superuser's credentials (`nats://user:pass@host:port`, read by connectNats),
 * so tests that exercise the bus itself connect as before; `connectAs(role)` connects with a role's user.
 * `restart()` brings it back on the same port, store and users, as an operator restarting the server would.
 */
import type { NatsConnection } from "@nats-io/transport-node";
import { generateNatsAuth, type NatsAuth, type NatsRole, roleConnectAuth } from "../../pkg/nats/auth.ts";
import { connectNats } from "../../pkg/nats/connection.ts";
import { ManagedNatsServer } from "../../pkg/nats/server.ts";

export interface TestNats {
  /** The server's URL with the test superuser's credentials. */
  readonly url: string;
  /** The server's URL without credentials. */
  readonly plainUrl: string;
  readonly storeDir: string;
  readonly auth: NatsAuth;
  server: ManagedNatsServer;
  /** Connects with the user (and inbox prefix) of `role`. */
  connectAs(role: NatsRole, name?: string): Promise<NatsConnection>;
  /** Stops (gracefully, or with SIGKILL when `crash`) and starts again on the same port and store. */
  restart(options?: { crash?: boolean; downMs?: number }): Promise<void>;
  stop(): Promise<void>;
}

export async function startTestNats(): Promise<TestNats> {
  const storeDir = await Deno.makeTempDir({ prefix: "compozy-nats-" });
  const auth = generateNatsAuth({ superuser: true });
  const server = await ManagedNatsServer.start({ storeDir, auth });
  const superuser = auth.superuser!;
  const harness: TestNats = {
    url: server.url.replace("://", `://${superuser.user}:${superuser.pass}@`),
    plainUrl: server.url,
    storeDir,
    auth,
    server,
    connectAs(role, name = `test-${role}`) {
      return connectNats(server.url, { name, auth: roleConnectAuth(auth, role) });
    },
    async restart(options = {}) {
      if (options.crash) await harness.server.kill();
      else await harness.server.stop();
      if (options.downMs) await new Promise((r) => setTimeout(r, options.downMs));
      harness.server = await startOnPort(storeDir, server.port, auth);
    },
    async stop() {
      await harness.server.stop();
      await Deno.remove(storeDir, { recursive: true }).catch(() => {});
    },
  };
  return harness;
}

/** The port may linger in TIME_WAIT for a moment after a kill; retry briefly. */
async function startOnPort(storeDir: string, port: number, auth: NatsAuth): Promise<ManagedNatsServer> {
  let lastError: unknown;
  for (let i = 0; i < 50; i++) {
    try {
      return await ManagedNatsServer.start({ storeDir, port, auth });
    } catch (e) {
      lastError = e;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  throw lastError;
}
