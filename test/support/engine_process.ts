/** An engine as its own process (`compozy start --role engine`), for tests that SIGKILL it mid-run. */
import { fileURLToPath } from "node:url";
import { createExecutionClient, type ExecutionClient } from "../../engine/mod.ts";
import { loadProject } from "../../engine/domain/project/mod.ts";
import type { NatsConnection } from "@nats-io/transport-node";
import { Bus, connectNats, provisionJetStream } from "../../pkg/nats/mod.ts";
import { scriptedRuntime, type ScriptedTool, writeProject } from "./engine.ts";
import { startTestNats } from "./nats.ts";
import { COMPOZY_DENO_RUN_FLAGS } from "./deno_run.ts";

const MAIN = fileURLToPath(new URL("../../main.ts", import.meta.url));

export interface EngineProcessOptions {
  instanceId: string;
  /** Default `warn`. */
  logLevel?: string;
  /** Default 1 s: a killed engine's work is redelivered soon. */
  ackWaitMs?: number;
  /** More environment variables of the engine process (templates read them as `.env`). */
  env?: Record<string, string>;
  /**
   * A file the process's output (its log lines) is appended to; without it the output is discarded. Several
   * processes may append to one file: each line is one log record.
   */
  logFile?: string;
}

/**
 * Spawns an engine on the project in `dir` against `natsUrl`, by default with a 1 s ack wait so that a killed
 * engine's work is redelivered soon. Its output is discarded, or appended to `options.logFile`.
 */
export function spawnEngineProcess(
  dir: string,
  natsUrl: string,
  options: EngineProcessOptions,
): Deno.ChildProcess {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      ...COMPOZY_DENO_RUN_FLAGS,
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
    stdout: options.logFile ? "piped" : "null",
    stderr: options.logFile ? "piped" : "null",
  }).spawn();
  if (options.logFile) {
    for (const output of [child.stdout, child.stderr]) appendTo(output, options.logFile);
  }
  return child;
}

/**
 * Copies `output` to the end of `path` until the process closes it (a SIGKILL too). A write that fails is
 * reported, not thrown: the log is for a person reading a run, and the run goes on without it.
 */
function appendTo(output: ReadableStream<Uint8Array>, path: string): void {
  Deno.open(path, { append: true, create: true })
    .then((file) => output.pipeTo(file.writable))
    .catch((e) => console.error(`the engine's output could not be appended to ${path}: ${e}`));
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
  /** SIGCONTs a stopped engine process: it goes on with what it held and what arrived meanwhile. */
  continueEngine(): void;
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
    continueEngine: () => engine.kill("SIGCONT"),
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
