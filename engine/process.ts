/** Runs an engine as a process of its own until SIGTERM or SIGINT. */
import { resolve } from "node:path";
import { configureLogging, getLogger } from "../pkg/logger/mod.ts";
import { Bus, connectNats, provisionJetStream } from "../pkg/nats/mod.ts";
import { loadProject } from "./domain/project/mod.ts";
import { startEngine } from "./mod.ts";

export interface EngineProcessOptions {
  cwd: string;
  natsUrl: string;
  /**
   * This engine's id on leases (default COMPOZY_INSTANCE_ID, else random). Keep it stable across restarts
   * of one engine (as `compozy dev` does) so a restart takes its leases back at once; two engines running
   * at the same time must never share one.
   */
  instanceId?: string;
  ackWaitMs?: number;
}

export async function runEngineProcess(options: EngineProcessOptions): Promise<void> {
  if (!options.natsUrl) throw new Error("The engine needs NATS: pass --nats-url or set NATS_URL");
  const root = resolve(options.cwd);
  const project = await loadProject(root);
  const nc = await connectNats(options.natsUrl, { name: "compozy-engine" });
  await provisionJetStream(nc);
  const bus = new Bus(nc, { source: "engine" });
  const instanceId = options.instanceId ?? Deno.env.get("COMPOZY_INSTANCE_ID") ??
    `engine-${crypto.randomUUID()}`;
  configureLogging({ component: "engine", bus, instanceId });
  const log = getLogger(["engine"]);
  const engine = await startEngine({ nc, bus, project, instanceId, ackWaitMs: options.ackWaitMs });
  log.info("engine {instanceId} consuming for project {project}", {
    instanceId,
    project: project.config.name,
  });
  const { promise: stopped, resolve: stop } = Promise.withResolvers<string>();
  Deno.addSignalListener("SIGTERM", () => stop("SIGTERM"));
  Deno.addSignalListener("SIGINT", () => stop("SIGINT"));
  log.info("engine stopping: {reason}", { reason: await stopped });
  await engine.stop();
  await nc.drain().catch(() => {});
}
