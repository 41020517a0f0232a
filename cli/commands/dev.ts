/**
 * `compozy dev`: NATS (managed, store under `<project>/.compozy/`, unless NATS_URL), the engine, the runtime
 * and the API in one command, with a live line per workflow and task event. `--watch` reloads definitions
 * when the project's YAML, env file or tool code change; running executions carry on (their state is in
 * NATS, and calls in flight end on the runtime that started them: docs/getting-started.md).
 *
 * @module
 */
import { createHash } from "node:crypto";
import { join, relative, resolve } from "node:path";
import { ConfigError } from "../../engine/domain/diagnostics.ts";
import { didYouMean } from "../../engine/domain/project/suggest.ts";
import { CliError } from "../cli_error.ts";
import { parseJsonFlag } from "../json_flag.ts";
import { EngineSwapError } from "../engine_swap_error.ts";
import { requireProjectDir } from "../project_dir.ts";
import { ENV } from "../settings.ts";
import type { Project } from "../../engine/domain/project/types.ts";
import { WebhookTable } from "../../engine/triggers/webhook_table.ts";
import { formatDiagnostics } from "../diagnostics_output.ts";
import { type LiveLog, startLiveLog } from "../live_log.ts";
import { modelKeyWarnings } from "../model_key_check.ts";
import { type ProjectChange, projectFolders, watchProject, writeGranted } from "../project_watcher.ts";
import { untilShutdownSignal } from "../shutdown.ts";
import { Stack } from "../stack.ts";
import { type Paint, paintFor } from "../terminal.ts";
import { versionInfo } from "../version.ts";

export interface DevOptions {
  cwd: string;
  port: number;
  watch: boolean;
  natsUrl?: string;
  apiKey?: string;
  bodyLimitBytes?: number;
  /** A workflow to start once everything is ready, showing its outcome (`make dev` runs the example). */
  run?: string;
  /** Its input, as JSON. */
  input?: string;
}

/**
 * `--run`'s input, read before anything starts: bad JSON was said only once NATS, the engine and the runtime
 * were up, as "could not run greeter: Expected property name…" naming no flag, and an `--input` without
 * `--run` was dropped without a word.
 */
function runInput(options: DevOptions): unknown {
  if (options.input === undefined) return {};
  if (options.run === undefined) {
    throw new CliError("--input is the input of --run: give --run <workflow> too, or leave --input out");
  }
  return parseJsonFlag(options.input, "--input");
}

/** How long `dev` waits for the engine and the runtime to answer before saying which one does not. */
const READY_TIMEOUT_MS = 30_000;

export async function runDev(options: DevOptions): Promise<number> {
  const paint = paintFor();
  const projectDir = resolve(options.cwd);
  const input = runInput(options);
  await requireProjectDir(projectDir);
  checkPortFree(options.port);
  const started = performance.now();
  // Listened for before anything starts: until a listener exists, SIGINT's default action kills dev (exit
  // 130) without stopping what it started. A Ctrl-C during the start is acted on once the stack is up.
  const stopping = new AbortController();
  const shutdown = untilShutdownSignal().then(() => stopping.abort());
  const stack = await Stack.start({
    role: "all",
    projectDir,
    stateDir: join(projectDir, ".compozy"),
    port: options.port,
    hostname: "127.0.0.1",
    natsUrl: options.natsUrl,
    apiKey: options.apiKey,
    bodyLimitBytes: options.bodyLimitBytes,
    // Stable per project: a restarted dev takes its own leases back at once.
    instanceId: `dev-${createHash("sha256").update(projectDir).digest("hex").slice(0, 12)}`,
    version: versionInfo(),
    checkProject: (project) => checkRunTarget(project, options.run),
  });
  // A managed nats-server that exits is started again in place; one that cannot be kept ends dev, as a signal does.
  const natsLost = stack.natsLost.then((lost) => {
    stopping.abort();
    return lost;
  });
  const ended = Promise.race([shutdown, natsLost]);
  const print = (line: string) => console.log(line);
  printBanner(stack, projectDir, paint, print);
  const live = startLiveLog(stack.nc, paint, print);
  const report = await Promise.race([stack.waitUntilHealthy(READY_TIMEOUT_MS), ended.then(() => undefined)]);
  if (!report) return await stop(stack, live, undefined, paint, print, await ended);
  if (report.status === "ok") {
    print(
      paint.green(`ready in ${Math.round(performance.now() - started)} ms`) + paint.dim(" — Ctrl-C to stop"),
    );
  } else {
    const missing = Object.entries(report.components).filter(([, c]) => c.status !== "ok");
    print(
      paint.yellow(
        `not ready after ${READY_TIMEOUT_MS / 1000}s: ${
          missing.map(([n, c]) =>
            `${n} (${typeof c.detail === "string" ? c.detail : JSON.stringify(c.detail)})`
          )
            .join(", ")
        }`,
      ),
    );
  }
  if (options.run && report.status === "ok" && !stopping.signal.aborted) {
    await Promise.race([
      runOnce(stack, live, options.run, input, paint, print, stopping.signal),
      ended,
    ]);
  }
  const watcher = options.watch && !stopping.signal.aborted
    ? watchProject(projectDir, (changes) => reload(stack, projectDir, changes, paint, print), {
      envFile: () => resolve(projectDir, stack.project?.config.env_file ?? ".env"),
      ignored: () => stack.project ? writeGranted(stack.project) : [],
      folders: () => stack.project ? projectFolders(stack.project) : { config: [], code: [] },
    })
    : undefined;
  if (watcher) {
    print(
      paint.dim(`watching ${projectDir} (--watch): definitions reload when YAML, .env or tool code change`),
    );
  }
  return await stop(stack, live, watcher, paint, print, await ended);
}

/**
 * The orderly stop after Ctrl-C (or SIGTERM): exit 0, as docs/api.md says; a second one exits 130 at once.
 * After the managed nats-server was lost, the same stop, then its error.
 */
async function stop(
  stack: Stack,
  live: LiveLog,
  watcher: ReturnType<typeof watchProject> | undefined,
  paint: Paint,
  print: (line: string) => void,
  natsLost: CliError | void,
): Promise<number> {
  print(paint.dim("stopping…"));
  watcher?.stop();
  live.stop();
  await stack.stop();
  if (natsLost) throw natsLost;
  return 0;
}

/** Starts `workflowId` once and prints how it ended, below the live log's lines of its steps. */
async function runOnce(
  stack: Stack,
  live: LiveLog,
  workflowId: string,
  input: unknown,
  paint: Paint,
  print: (line: string) => void,
  stopping: AbortSignal,
): Promise<void> {
  const client = stack.executionClient!;
  const started = performance.now();
  try {
    const { execId } = await client.trigger(workflowId, input, { source: "cli" });
    const state = await client.waitForEnd(execId, 60_000);
    const took = `${Math.round(performance.now() - started)} ms`;
    // The state can be read before the live log has printed the last steps: the summary comes after them.
    await live.whenEnded(execId, 2_000);
    const color = state.status === "SUCCESS" ? paint.green : paint.red;
    print(color(`${workflowId} ${state.status} in ${took}`) + paint.dim(` (${execId})`));
    print(
      `  ${state.status === "SUCCESS" ? "output" : "error"} ${JSON.stringify(state.output ?? state.error)}`,
    );
  } catch (e) {
    // Once dev stops, the wait for the run's end fails with the stack: dev's stop, not the run's failure.
    if (stopping.aborted) return;
    print(paint.red(`could not run ${workflowId}: ${e instanceof Error ? e.message : String(e)}`));
  }
}

/** `--run`'s workflow, checked once the project is loaded and before NATS starts: a typo is said at once. */
function checkRunTarget(project: Project, workflowId: string | undefined): void {
  if (workflowId === undefined || project.workflows.has(workflowId)) return;
  const known = [...project.workflows.keys()];
  throw new CliError(
    `--run ${workflowId}: no workflow '${workflowId}' in this project${didYouMean(workflowId, known)}`,
    [
      `Its workflows: ${known.join(", ") || "(none)"}`,
    ],
  );
}

/** A busy port found before NATS and the engine start, named with the way out. */
function checkPortFree(port: number): void {
  let listener: Deno.Listener;
  try {
    listener = Deno.listen({ hostname: "127.0.0.1", port });
  } catch (error) {
    if (!(error instanceof Deno.errors.AddrInUse)) throw error;
    throw new CliError(`port ${port} is already in use (another compozy dev?)`, [
      `Choose another: --port ${port + 1} (or ${ENV.port}=${port + 1})`,
    ]);
  }
  listener.close();
}

async function reload(
  stack: Stack,
  projectDir: string,
  changes: ProjectChange[],
  paint: Paint,
  print: (l: string) => void,
) {
  const changed = changes.map((c) => relative(projectDir, c.path)).join(", ");
  try {
    // Tool modules are cached by warm sandboxes: a changed module means a fresh runtime (the old one drains).
    // The watched folder, not the project last loaded: after a `compozy deploy` that is the deployment's.
    const project = await stack.reload({
      projectDir,
      restartRuntime: changes.some((c) => c.kind === "code"),
    });
    print(paint.blue(`reloaded (${changed}): ${project.workflows.size} workflow(s)`));
    formatDiagnostics(project.warnings, projectDir, paint).forEach(print);
  } catch (e) {
    // Whatever the reason (a project with errors, a file that cannot be read, NATS not answering), dev keeps
    // running the last project that loaded: a save must never end the stack and the executions it serves.
    if (e instanceof ConfigError) {
      print(
        paint.red(`not reloaded (${changed}): the project has errors; the previous definitions stay in use`),
      );
      formatDiagnostics(e.diagnostics, projectDir, paint).forEach(print);
      return;
    }
    if (e instanceof EngineSwapError) {
      const then = e.engineRuns ? "the previous definitions stay in use" : "restart compozy dev";
      print(paint.red(`not reloaded (${changed}): ${e.message}; ${then}`));
      return;
    }
    print(
      paint.red(
        `not reloaded (${changed}): ${describe(e)}; the previous definitions stay in use`,
      ),
    );
  }
}

/** An error's message with those of its causes, on one line. */
function describe(error: unknown): string {
  const parts: string[] = [];
  for (let e: unknown = error; e !== undefined && parts.length < 5; e = (e as Error).cause) {
    parts.push(e instanceof Error ? e.message : String(e));
    if (!(e instanceof Error)) break;
  }
  return parts.join(": ");
}

function printBanner(stack: Stack, projectDir: string, paint: Paint, print: (line: string) => void): void {
  const project = stack.project as Project;
  const api = stack.apiUrl!;
  print(paint.bold(`compozy dev — ${project.config.name}`) + paint.dim(` (${projectDir})`));
  print(`  API       ${api}   docs ${api}/docs`);
  print(`  console   ${api}/`);
  const store = stack.managedNatsStore;
  print(
    `  NATS      ${stack.natsUrl}${
      store ? paint.dim(` (managed, store ${relative(projectDir, store)})`) : ""
    }`,
  );
  if (stack.stoppedOrphanNats) {
    print(paint.yellow(
      `  stopped nats-server ${stack.stoppedOrphanNats}, left running on this store by an earlier run that was killed`,
    ));
  }
  print(`  workflows ${[...project.workflows.keys()].join(", ")}`);
  for (const hook of WebhookTable.fromProject(project, Deno.env.toObject()).routes()) {
    const signed = hook.secret || hook.secretProblem ? " (signed)" : "";
    print(`  webhook   POST ${api}/api/webhooks${hook.path} → ${hook.workflowId}${signed}`);
  }
  for (const workflow of project.workflows.values()) {
    for (const trigger of workflow.config.triggers ?? []) {
      if (trigger.type === "schedule") print(`  schedule  ${trigger.config.cron} (UTC) → ${workflow.id}`);
    }
  }
  formatDiagnostics(project.warnings, projectDir, paint).forEach(print);
  for (const line of modelKeyWarnings(project, Deno.env.toObject())) print(paint.yellow(`warning: ${line}`));
}
