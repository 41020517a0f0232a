/** An engine as its own process (`compozy start --role engine`), for tests that SIGKILL it mid-run. */
import { fileURLToPath } from "node:url";

const MAIN = fileURLToPath(new URL("../../main.ts", import.meta.url));

export interface EngineProcessOptions {
  instanceId: string;
  /** Default `warn`. */
  logLevel?: string;
  /** Default 1 s: a killed engine's work is redelivered soon. */
  ackWaitMs?: number;
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
    },
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
}
