/**
 * A managed `nats-server` with JetStream on a free loopback port, for `compozy dev` and the test suites.
 * The child stays in our process group, so a SIGKILL of the group stops it too; a forced exit of ours
 * (`Deno.exit`, e.g. after a second SIGTERM sent to our pid alone) kills it on the way out, and a watchdog
 * stops it when we are killed alone (server_guard.ts), so it never outlives us as an orphan holding its port
 * and store. One server per store: a start is refused while another live process runs one there, and stops a
 * server of ours that a killed process left running. A restart on the same store directory resumes from what
 * JetStream stored.
 */
import { join } from "node:path";
import { type NatsAuth, type ServerConfigOptions, writeServerConfig } from "./auth.ts";
import { NatsServerNotFoundError, NatsServerStartError } from "./errors.ts";
import { claimStore, jetStreamDir, type StoreClaim } from "./server_guard.ts";
import { searchFolders } from "../utils/search_path.ts";

export interface ManagedNatsOptions {
  /** JetStream's store directory; created when missing. */
  storeDir: string;
  /** Port to listen on; default a free one chosen by the server. Pass the old port to restart in place. */
  port?: number;
  /** Default 127.0.0.1. */
  host?: string;
  /** Path to the binary; default NATS_SERVER_BIN, then `nats-server` in PATH's absolute folders. */
  binary?: string;
  /** How long to wait for the server to listen; default 10 s. */
  readyTimeoutMs?: number;
  /** The users the server accepts (auth.ts); without it the server is open to anyone who reaches it. */
  auth?: NatsAuth;
  /** Largest message accepted; default auth.ts's DEFAULT_MAX_PAYLOAD_BYTES (8 MiB). */
  maxPayloadBytes?: number;
  /** Name and cluster place of a clustered server (auth.ts's ServerConfigOptions); needs `auth`. */
  serverName?: string;
  cluster?: ServerConfigOptions["cluster"];
}

/** Finds the nats-server binary, or throws NatsServerNotFoundError saying how to install it. */
export async function findNatsServerBinary(explicit?: string): Promise<string> {
  const candidates = [explicit, Deno.env.get("NATS_SERVER_BIN")].filter((c): c is string => !!c);
  for (const dir of searchFolders()) {
    candidates.push(join(dir, "nats-server"));
  }
  for (const candidate of candidates) {
    try {
      const info = await Deno.stat(candidate);
      if (info.isFile) return candidate;
    } catch {
      // Not here: try the next place.
    }
  }
  throw new NatsServerNotFoundError();
}

export class ManagedNatsServer {
  private stopped = false;
  // Deno.exit dispatches "unload" synchronously before the process ends; an async stop() cannot run then.
  private readonly killOnExit = () => this.signal("SIGKILL");

  private constructor(
    readonly url: string,
    readonly port: number,
    readonly storeDir: string,
    readonly auth: NatsAuth | undefined,
    private readonly child: Deno.ChildProcess,
    private readonly output: () => string,
    /** The pid of a server a killed process had left running on this store, which this start stopped. */
    readonly stoppedOrphan: number | undefined,
    private readonly released: Promise<void>,
  ) {}

  get pid(): number {
    return this.child.pid;
  }

  /** Starts the server and resolves once it accepts connections. */
  static async start(options: ManagedNatsOptions): Promise<ManagedNatsServer> {
    const binary = await findNatsServerBinary(options.binary);
    const host = options.host ?? "127.0.0.1";
    const portsDir = join(options.storeDir, "ports");
    await Deno.mkdir(portsDir, { recursive: true });
    const claim = await claimStore(options.storeDir);
    try {
      return await ManagedNatsServer.spawn(binary, host, portsDir, options, claim);
    } catch (e) {
      await claim.release();
      throw e;
    }
  }

  private static async spawn(
    binary: string,
    host: string,
    portsDir: string,
    options: ManagedNatsOptions,
    claim: StoreClaim,
  ): Promise<ManagedNatsServer> {
    const config = await writeServerConfig(options.storeDir, options.auth, {
      maxPayloadBytes: options.maxPayloadBytes,
      serverName: options.serverName,
      cluster: options.cluster,
    });
    const args = [
      "-c",
      config,
      "-a",
      host,
      "-p",
      String(options.port ?? -1),
      "-js",
      "-sd",
      jetStreamDir(options.storeDir),
      "--ports_file_dir",
      portsDir,
    ];
    const child = new Deno.Command(binary, { args, stdin: "null", stdout: "piped", stderr: "piped" }).spawn();
    // However it ends (stopped, crashed, killed by a test), the store is free once it has exited.
    const released = child.status.then(() => claim.release());
    let output = "";
    const collect = async (stream: ReadableStream<Uint8Array>) => {
      for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
        // Keep the tail only: a long-running server logs forever.
        output = (output + chunk).slice(-16_384);
      }
    };
    collect(child.stdout).catch(() => {});
    collect(child.stderr).catch(() => {});
    const portsFile = join(portsDir, `nats-server_${child.pid}.ports`);
    try {
      await claim.running(child.pid);
      const url = await waitForPortsFile(portsFile, child, options.readyTimeoutMs ?? 10_000, () => output);
      const server = new ManagedNatsServer(
        url,
        Number(new URL(url).port),
        options.storeDir,
        options.auth,
        child,
        () => output,
        claim.stoppedOrphan,
        released,
      );
      globalThis.addEventListener("unload", server.killOnExit);
      return server;
    } catch (e) {
      try {
        child.kill("SIGKILL");
      } catch {
        // Already gone.
      }
      await released;
      throw e;
    }
  }

  /** The last lines the server printed; useful in error reports. */
  logTail(): string {
    return this.output();
  }

  /** Stops the server gracefully (SIGTERM), then with SIGKILL after `graceMs`. Idempotent. */
  async stop(graceMs = 5_000): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    if (!this.signal("SIGTERM")) return this.exited();
    const timer = setTimeout(() => this.signal("SIGKILL"), graceMs);
    await this.exited();
    clearTimeout(timer);
  }

  /**
   * Resolves with the server's exit status once it has exited without stop() or kill() (a crash, an OOM kill,
   * someone's kill -9), its store free again; with undefined once it was stopped or killed through us.
   */
  async exitedUnasked(): Promise<Deno.CommandStatus | undefined> {
    const status = await this.child.status;
    await this.exited();
    return this.stopped ? undefined : status;
  }

  /** Kills the server at once, as a crash would. */
  async kill(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.signal("SIGKILL");
    await this.exited();
  }

  /** False when the server had already exited. */
  private signal(signal: Deno.Signal): boolean {
    try {
      this.child.kill(signal);
      return true;
    } catch {
      return false;
    }
  }

  private async exited(): Promise<void> {
    await this.released;
    globalThis.removeEventListener("unload", this.killOnExit);
  }
}

async function waitForPortsFile(
  portsFile: string,
  child: Deno.ChildProcess,
  timeoutMs: number,
  output: () => string,
): Promise<string> {
  let exited: Deno.CommandStatus | undefined;
  child.status.then((s) => exited = s);
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (exited) {
      throw new NatsServerStartError(
        `nats-server exited with code ${exited.code} before it was ready: ${lastLine(output())}`,
        output(),
      );
    }
    try {
      const ports = JSON.parse(await Deno.readTextFile(portsFile)) as { nats?: string[] };
      const url = ports.nats?.[0];
      if (url) return url;
    } catch {
      // Not written yet (or half written): poll again.
    }
    await new Promise((r) => setTimeout(r, 5));
  }
  throw new NatsServerStartError(`nats-server was not ready after ${timeoutMs} ms`, output());
}

/** The last line of a server's output, for a one-line error. */
export function lastLine(text: string): string {
  const lines = text.trim().split("\n");
  return lines[lines.length - 1] ?? "(no output)";
}
