/**
 * `compozy start`: the production processes. `--role all` runs everything in one process (with a managed
 * NATS unless NATS_URL); `api`, `engine` and `runtime` run one part each and share a NATS cluster, so that
 * each can be scaled on its own. `--bundle FILE` runs a bundle made by `compozy build`.
 *
 * @module
 */
import { hostname } from "node:os";
import { join, resolve } from "node:path";
import { getLogger } from "../../pkg/logger/mod.ts";
import { readBundleFile, unpackBundle } from "../bundle.ts";
import { CliError } from "../cli_error.ts";
import { untilShutdownSignal } from "../shutdown.ts";
import type { Role } from "../roles.ts";
import { Stack } from "../stack.ts";
import { versionInfo } from "../version.ts";

export interface StartOptions {
  cwd: string;
  role: Role;
  bundle?: string;
  port: number;
  host: string;
  natsUrl?: string;
  apiKey?: string;
  bodyLimitBytes?: number;
  instanceId?: string;
}

export async function runStart(options: StartOptions): Promise<number> {
  // Listened for before anything starts: a supervisor's SIGTERM during the start (which may wait up to a
  // minute for JetStream) would otherwise kill the process half-started, its managed nats-server orphaned.
  // A signal during the start is acted on once the stack is up.
  const shutdown = untilShutdownSignal();
  const cwd = resolve(options.cwd);
  const stateDir = join(cwd, ".compozy");
  const projectDir = options.bundle
    ? (await unpackBundle(await readBundleFile(resolve(cwd, options.bundle)), stateDir)).dir
    : cwd;
  const stack = await Stack.start({
    role: options.role,
    projectDir,
    stateDir,
    port: options.port,
    hostname: options.host,
    natsUrl: options.natsUrl,
    apiKey: options.apiKey,
    bodyLimitBytes: options.bodyLimitBytes,
    // Without a configured id, a restarted process gets a new one and takes over leases once they expire.
    instanceId: options.instanceId ?? `${hostname().replace(/[^A-Za-z0-9_-]/g, "-")}-${Deno.pid}`,
    version: versionInfo(),
  });
  const log = getLogger(["cli", "start"]);
  // One field per fact, each present only when it applies: no pre-formatted ", API …" fragments, which a
  // log line shows again as quoted values with their commas.
  log.info("compozy {version} started", {
    version: versionInfo().version,
    role: options.role,
    nats: stack.natsUrl,
    ...(stack.apiUrl ? { api: stack.apiUrl } : {}),
    ...(stack.project ? { project: stack.project.config.name, root: stack.project.root } : {}),
  });
  if (stack.stoppedOrphanNats) {
    log.warn("Stopped nats-server {pid}, left running on {store} by an earlier run that was killed", {
      pid: stack.stoppedOrphanNats,
      store: stack.managedNatsStore,
    });
  }
  // A managed nats-server that exits is started again in place; one that cannot be kept stops the process.
  const ended = await Promise.race([shutdown, stack.natsLost]);
  if (ended instanceof CliError) {
    log.error("{error}: stopping", { error: ended.message });
    await stack.stop();
    throw ended;
  }
  log.info("{signal}: stopping", { signal: ended });
  await stack.stop();
  return 0;
}
