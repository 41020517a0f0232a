/**
 * Keeps a stack's managed nats-server running. When it exits unasked (an OOM kill, someone's kill -9), it is
 * started again on its port and its store: the stack's connections and the runtime's reconnect forever to that
 * address (pkg/nats/connection.ts), and JetStream resumes from what it stored, so the executions go on. A
 * server that keeps exiting, or that cannot start again (its port taken meanwhile), ends the stack with an
 * error that says so: a `compozy dev` that looks alive while it never recovers is worse than one that stops.
 *
 * @module
 */
import { getLogger } from "../pkg/logger/mod.ts";
import { ManagedNatsServer } from "../pkg/nats/mod.ts";
import { lastLine } from "../pkg/nats/server.ts";
import { CliError } from "./cli_error.ts";

/** More unasked exits than this within {@linkcode RESTART_WINDOW_MS} end the stack. */
const MAX_RESTARTS = 3;
const RESTART_WINDOW_MS = 60_000;

const log = getLogger(["cli", "nats"]);

export class ManagedNatsKeeper {
  private stopping = false;
  private restarting: Promise<unknown> = Promise.resolve();
  /** Resolves with the reason once the server cannot be kept; with undefined once the keeper is stopped. */
  readonly lost: Promise<CliError | undefined>;

  constructor(
    private server: ManagedNatsServer,
    /** Told of each server started in place of the last, the one the stack must stop in the end. */
    private readonly restarted: (server: ManagedNatsServer) => void,
  ) {
    this.lost = this.keep();
  }

  /** Stops keeping the server; a restart under way ends first, so the last server told of is the one to stop. */
  async stop(): Promise<void> {
    this.stopping = true;
    await this.restarting;
  }

  private async keep(): Promise<CliError | undefined> {
    const restarts: number[] = [];
    while (true) {
      const server = this.server;
      const status = await server.exitedUnasked();
      if (!status || this.stopping) return undefined;
      const how = status.signal ? `signal ${status.signal}` : `exit code ${status.code}`;
      const now = Date.now();
      const recent = restarts.filter((at) => now - at < RESTART_WINDOW_MS);
      if (recent.length >= MAX_RESTARTS) {
        return new CliError(
          `The managed nats-server exited (${how}) ${recent.length + 1} times within ` +
            `${RESTART_WINDOW_MS / 1000} s; stopping`,
          [`Its store: ${server.storeDir}`, `Its last output: ${lastLine(server.logTail())}`],
        );
      }
      restarts.splice(0, restarts.length, ...recent, now);
      log.warn("The managed nats-server (pid {pid}) exited ({how}); starting it again on port {port}", {
        pid: server.pid,
        how,
        port: server.port,
      });
      const restart = ManagedNatsServer.start({
        storeDir: server.storeDir,
        auth: server.auth,
        port: server.port,
      });
      // stop() only waits for the start to settle; its failure is this loop's to report, below.
      this.restarting = restart.catch(() => undefined);
      try {
        this.server = await restart;
        this.restarted(this.server);
      } catch (e) {
        return new CliError(
          `The managed nats-server exited (${how}) and could not be started again: ${(e as Error).message}`,
          ["Restart compozy: what JetStream stored is kept in the store and resumed from."],
          undefined,
          { cause: e },
        );
      }
      if (this.stopping) return undefined;
      log.info("The managed nats-server is back (pid {pid}, port {port})", {
        pid: this.server.pid,
        port: this.server.port,
      });
    }
  }
}
