/**
 * A real nats-server for integration tests, on a free loopback port with its own store directory.
 * `restart()` brings it back on the same port and store, as an operator restarting the server would.
 */
import { ManagedNatsServer } from "../../pkg/nats/server.ts";

export interface TestNats {
  readonly url: string;
  readonly storeDir: string;
  server: ManagedNatsServer;
  /** Stops (gracefully, or with SIGKILL when `crash`) and starts again on the same port and store. */
  restart(options?: { crash?: boolean; downMs?: number }): Promise<void>;
  stop(): Promise<void>;
}

export async function startTestNats(): Promise<TestNats> {
  const storeDir = await Deno.makeTempDir({ prefix: "compozy-nats-" });
  const server = await ManagedNatsServer.start({ storeDir });
  const harness: TestNats = {
    url: server.url,
    storeDir,
    server,
    async restart(options = {}) {
      if (options.crash) await harness.server.kill();
      else await harness.server.stop();
      if (options.downMs) await new Promise((r) => setTimeout(r, options.downMs));
      harness.server = await startOnPort(storeDir, server.port);
    },
    async stop() {
      await harness.server.stop();
      await Deno.remove(storeDir, { recursive: true }).catch(() => {});
    },
  };
  return harness;
}

/** The port may linger in TIME_WAIT for a moment after a kill; retry briefly. */
async function startOnPort(storeDir: string, port: number): Promise<ManagedNatsServer> {
  let lastError: unknown;
  for (let i = 0; i < 50; i++) {
    try {
      return await ManagedNatsServer.start({ storeDir, port });
    } catch (e) {
      lastError = e;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  throw lastError;
}
