/** An engine as its own process (`compozy start --role engine`), for tests that SIGKILL it mid-run. */
import { fileURLToPath } from "node:url";
import { createExecutionClient, type ExecutionClient } from "../../engine/mod.ts";
import { loadProject } from "../../engine/domain/project/mod.ts";
import type { NatsConnection } from "@nats-io/transport-node";
import { Bus, connectNats, provisionJetStream } from "../../pkg/nats/mod.ts";
import { scriptedRuntime, type ScriptedTool, writeProject } from "./engine.ts";
import { startTestNats } from "./nats.ts";

const MAIN = fileURLToPath(new URL("../../main.ts", import.meta.url));

export interface EngineProcessOptions {
  instanceId: string;
  /** Default `warn`. */
  logLevel?: string;
  /** Default 1 s: a killed engine's work is redelivered soon. */
  ackWaitMs?: number;
  /** More environment variables of the engine process (templates read them as `.env`). */
  env?: Record<string, string>;
}

/**
 * Spawns an engine on the project in `dir` against `natsUrl`, by default with a 1 s ack wait so that a killed
 * engine's work is redelivered soon. Its output is discarded.
 */
export function spawnEngineProcess(
  dir: string,
  natsUrl: string,
  options: EngineProcessOptions,
): Deno.ChildProcess {
  return new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      MAIN,
      "start",
      "--role",
      "engine",
      "--cwd",
      dir,
      "--nats-url",
      natsUrl,
      "--instance-id",
      options.instanceId,
    ],
    env: {
      LOG_FORMAT: "json",
      COMPOZY_LOG_LEVEL: options.logLevel ?? "warn",
      COMPOZY_ACK_WAIT_MS: String(options.ackWaitMs ?? 1_000),
      ...options.env,
    },
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
}

/**
 * What a crash test runs against: a real nats-server, the project in a temporary folder, tools answered by
 * `tools` in this process, an execution client, and the engine as its own process, to be SIGKILLed and
 * started again.
 */
export interface CrashStack {
  client: ExecutionClient;
  /** The test's own connection (a superuser's: the streams and consumers can be inspected). */
  nc: NatsConnection;
  /** SIGSTOPs the engine process: it keeps its connection and what it was delivered, and does nothing. */
  stopEngine(): void;
  /** SIGKILLs the engine process and waits for its exit. */
  killEngine(): Promise<void>;
  /** Starts a new engine process (after `killEngine`), with the same options but those given. */
  restartEngine(options?: Partial<EngineProcessOptions>): void;
  /** Kills the engine if it runs and removes everything the stack started. */
  close(): Promise<void>;
}

export async function startCrashStack(
  files: Record<string, string>,
  tools: Record<string, ScriptedTool>,
  engineOptions: EngineProcessOptions,
): Promise<CrashStack> {
  const dir = await writeProject(files);
  const nats = await startTestNats();
  const nc = await connectNats(nats.url, { name: "crash-test" });
  await provisionJetStream(nc);
  const bus = new Bus(nc, { source: "test" });
  const runtime = scriptedRuntime(bus, tools);
  const client = await createExecutionClient({ nc, bus, project: await loadProject(dir) });
  let engine = spawnEngineProcess(dir, nats.url, engineOptions);
  const killEngine = async () => {
    try {
      engine.kill("SIGKILL");
    } catch { /* it has exited already (killed before, or died on its own) */ }
    await engine.status;
  };
  return {
    client,
    nc,
    stopEngine: () => engine.kill("SIGSTOP"),
    killEngine,
    restartEngine(options) {
      engine = spawnEngineProcess(dir, nats.url, { ...engineOptions, ...options });
    },
    async close() {
      await killEngine();
      runtime.stop();
      await nc.close();
      await nats.stop();
      await Deno.remove(dir, { recursive: true });
    },
  };
}
