/**
 * The processes behind `compozy dev` and `compozy start`: NATS (managed unless NATS_URL is given), JetStream
 * provisioning, the engine with its schedules, the runtime child and the API server, each present according
 * to the role. Reloads (file changes, deployments) swap definitions without dropping executions: their
 * state lives in NATS, so a new engine simply takes them over, and the API answers from the old definitions
 * until the new ones are loaded and checked.
 *
 * @module
 */
import { Kvm } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/transport-node";
import type { ExecutionClient } from "../engine/client.ts";
import { loadProject } from "../engine/domain/project/mod.ts";
import type { Project } from "../engine/domain/project/types.ts";
import {
  createExecutionClient,
  type EngineHandle,
  engineTimingsFromEnv,
  startEngine,
} from "../engine/mod.ts";
import { kvScheduleStore, ScheduleRunner } from "../engine/triggers/mod.ts";
import { configureLogging, getLogger } from "../pkg/logger/mod.ts";
import {
  BUCKETS,
  Bus,
  connectNats,
  isTransientNatsError,
  type ManagedNatsServer,
  provisionJetStream,
  type ProvisionOptions,
} from "../pkg/nats/mod.ts";
import {
  collectEngineMetrics,
  createApp,
  type DeployBundle,
  type DeployResult,
  type HealthCheck,
  type HealthReport,
  jetStreamLogSource,
  LiveStreams,
  MetricsRegistry,
  natsHealthCheck,
  type NatsLink,
  type VersionInfo,
  watchNatsLink,
} from "../server/mod.ts";
import type { Hono } from "hono";
import { delimiter, dirname, resolve } from "node:path";
import { PROTECTED_ROOTS_ENV } from "../pkg/runtime/grant_paths.ts";
import { runtimeSettingsFromEnv } from "../pkg/runtime/settings_env.ts";
import { ApiError } from "../server/api_error.ts";
import { unpackBundle } from "./bundle.ts";
import { CliError, EXIT_USER_ERROR } from "./cli_error.ts";
import { ENV } from "./settings.ts";
import { EngineSwapError } from "./engine_swap_error.ts";
import { ManagedNatsKeeper } from "./managed_nats_keeper.ts";
import { RuntimeProcess } from "./runtime_process.ts";
import { localUpstreams } from "./upstream_ports.ts";
import { natsLinkFor, natsRoleOf, provisionOptions, type StackNats } from "./stack_nats.ts";
import type { Role } from "./roles.ts";

export interface StackOptions {
  role: Role;
  /** The project directory (not needed by a runtime-only process). */
  projectDir: string;
  /** Where a managed NATS keeps its store and deployments are unpacked: `<project>/.compozy`. */
  stateDir: string;
  port: number;
  hostname: string;
  natsUrl?: string;
  apiKey?: string;
  /** Stable across restarts, so that an engine takes its own leases back at once. */
  instanceId: string;
  version: VersionInfo;
  /** Request body limit of the API; default 1 MiB. */
  bodyLimitBytes?: number;
  /** Checks the loaded project before anything starts (e.g. that `dev --run`'s workflow exists); may throw. */
  checkProject?: (project: Project) => void;
}

/** Set to `1` by a server's operator to let bundles deployed over HTTP run MCP `command:` servers. */
export const ALLOW_DEPLOYED_MCP_COMMANDS_ENV = "COMPOZY_ALLOW_DEPLOYED_MCP_COMMANDS";

interface ReloadOptions {
  projectDir?: string;
  /** Tool code changed: a fresh runtime takes new calls while the old one finishes those it runs. */
  restartRuntime?: boolean;
  /** The project is a bundle received over HTTP (`POST /api/admin/deployments`). */
  deployed?: boolean;
}

export class Stack {
  private engine?: EngineHandle;
  private schedules?: ScheduleRunner;
  private runtime?: RuntimeProcess;
  private server?: Deno.HttpServer<Deno.NetAddr>;
  private app?: Hono;
  private client?: ExecutionClient;
  private reloading: Promise<unknown> = Promise.resolve();
  private readonly metrics = new MetricsRegistry();
  private readonly liveStreams = new LiveStreams();
  private readonly log = getLogger(["cli", "stack"]);
  private stopEngineMetrics?: () => void;
  private readonly natsKeeper?: ManagedNatsKeeper;

  private constructor(
    private readonly options: StackOptions,
    private readonly nats: StackNats,
    readonly nc: NatsConnection,
    private readonly bus: Bus,
    private currentProject: Project | undefined,
    private readonly link: NatsLink,
  ) {
    this.health = natsHealthCheck(nc, link);
    if (nats.managed) {
      this.natsKeeper = new ManagedNatsKeeper(nats.managed, (restarted) => nats.managed = restarted);
    }
  }

  /**
   * Resolves with the reason once the managed nats-server exited and could not be kept running (see
   * ManagedNatsKeeper); the stack is then useless and should be stopped. Never resolves otherwise.
   */
  get natsLost(): Promise<CliError> {
    return (this.natsKeeper?.lost ?? Promise.resolve(undefined)).then((lost) =>
      lost ?? new Promise(() => {})
    );
  }

  /** The NATS servers in use, without credentials (safe to print). */
  get natsUrl(): string {
    return this.nats.url;
  }

  private get managedNats(): ManagedNatsServer | undefined {
    return this.nats.managed;
  }

  readonly health: HealthCheck;

  static async start(options: StackOptions): Promise<Stack> {
    if (options.role !== "all" && !options.natsUrl) {
      throw new CliError(
        `--role ${options.role} needs NATS_URL: processes of different roles must share one NATS`,
        ["Start one with 'nats-server -js', or use --role all to run everything with a managed server."],
      );
    }
    // A bad timing variable is said before anything starts (it names the variable).
    if (options.role === "all" || options.role === "engine") engineTimingsFromEnv();
    if (options.role === "all" || options.role === "runtime") runtimeSettingsFromEnv();
    const project = options.role === "runtime" ? undefined : await loadProject(options.projectDir);
    if (project) options.checkProject?.(project);
    const link = await natsLinkFor(options);
    let nc: NatsConnection | undefined;
    let bus: Bus;
    try {
      nc = await connectNats(link.url, {
        name: `compozy-${options.role}-${options.instanceId}`,
        auth: link.auth,
        role: natsRoleOf(options.role),
      });
      bus = new Bus(nc, {
        source: options.role === "api" || options.role === "runtime" ? options.role : "engine",
      });
      await configureLogging({
        component: options.role === "all" ? "engine" : options.role,
        bus,
        instanceId: options.instanceId,
      });
      // The runtime's user may not touch the JetStream API: the engine and the API provision.
      if (project) {
        const settings = provisionOptions(project.config.nats, (name) => Deno.env.get(name));
        const report = await provisionPatiently(nc, settings);
        const log = getLogger(["cli", "stack"]);
        for (const note of report.notes) log.info("JetStream: {note}", { note });
      }
    } catch (e) {
      await nc?.close().catch(() => {});
      await link.managed?.stop();
      throw e;
    }
    const stack = new Stack(options, link, nc, bus, project, watchNatsLink(nc));
    try {
      await stack.startComponentsPatiently();
    } catch (e) {
      // E.g. the API port is taken after the engine and the runtime started: stop what did start.
      await stack.stop();
      throw e;
    }
    return stack;
  }

  get project(): Project | undefined {
    return this.currentProject;
  }

  /** The API's address once it listens. */
  get apiUrl(): string | undefined {
    if (!this.server) return undefined;
    const { hostname, port } = this.server.addr;
    return `http://${hostname.includes(":") ? `[${hostname}]` : hostname}:${port}`;
  }

  get managedNatsStore(): string | undefined {
    return this.managedNats?.storeDir;
  }

  /** The pid of a managed nats-server that a killed run had left on the store, stopped by this start. */
  get stoppedOrphanNats(): number | undefined {
    return this.managedNats?.stoppedOrphan;
  }

  /** The client of the running engine (or of NATS, for an API-only role), once started. */
  get executionClient(): ExecutionClient | undefined {
    return this.client;
  }

  /** Resolves once every component answers (or the time runs out), with the last report. */
  async waitUntilHealthy(timeoutMs: number): Promise<HealthReport> {
    const deadline = Date.now() + timeoutMs;
    while (true) {
      const report = await this.health.check();
      if (report.status === "ok" || Date.now() > deadline) return report;
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /**
   * Loads the project again (from `projectDir`, default the current one) and swaps it in. A project that does
   * not load throws ConfigError and changes nothing; an engine that does not start on it throws
   * EngineSwapError, the previous project's engine running again. Reloads run one at a time.
   */
  reload(options: ReloadOptions = {}): Promise<Project> {
    const next = this.reloading.then(() => this.swap(options));
    this.reloading = next.catch(() => {});
    return next;
  }

  /**
   * Unpacks a bundle under `<stateDir>/deployments/` and switches to it. A bundle received this way may not
   * declare MCP `command:` servers (they run unsandboxed, as the server's user) unless the operator set
   * {@linkcode ALLOW_DEPLOYED_MCP_COMMANDS_ENV}: the API key then stops being the key to a shell.
   */
  async deploy(bundle: DeployBundle): Promise<DeployResult> {
    const { dir, digest } = await unpackBundle(bundle, this.options.stateDir);
    const project = await this.reload({ projectDir: dir, deployed: true });
    this.log.info("Deployed {project} ({digest})", { project: project.config.name, digest });
    return { deployment: digest, project: project.config.name, workflows: [...project.workflows.keys()] };
  }

  async stop(): Promise<void> {
    await this.natsKeeper?.stop();
    this.bus.beginStop();
    await this.stopComponents();
    this.link.stop();
    await this.nc.drain().catch(() => {});
    await this.managedNats?.stop();
  }

  private get runsEngine(): boolean {
    return this.options.role === "all" || this.options.role === "engine";
  }

  private get runsApi(): boolean {
    return this.options.role === "all" || this.options.role === "api";
  }

  /**
   * Starts the components, again while JetStream does not answer (as provisioning does, for at most
   * PROVISION_PATIENCE_MS), after stopping what started. A node failing over while a process starts (its
   * consumers being created) made the start fail with a time-out: in the cluster test the last live engine
   * exited that way, and every execution stayed RUNNING.
   */
  private startComponentsPatiently(): Promise<void> {
    return this.patiently("starting", () => this.startComponents(), () => this.stopComponents());
  }

  /**
   * `start` again while NATS does not answer, for at most PROVISION_PATIENCE_MS, with `undo` of what started
   * between attempts. Any other error ends it at once.
   */
  private async patiently(what: string, start: () => Promise<void>, undo: () => Promise<void>) {
    const deadline = Date.now() + PROVISION_PATIENCE_MS;
    for (let attempt = 1;; attempt++) {
      try {
        return await start();
      } catch (e) {
        if (!isTransientNatsError(e) || Date.now() + 1_000 >= deadline) throw e;
        this.log.warn(
          "NATS did not answer while {what} (attempt {attempt}: {error}); {what} again in 1 s",
          {
            what,
            attempt,
            error: e instanceof Error ? e.message : String(e),
          },
        );
        await undo();
        await new Promise((resolve) => setTimeout(resolve, 1_000));
      }
    }
  }

  /** Stops the components (what started of them), not the connection. */
  private async stopComponents(): Promise<void> {
    // Before the shutdown, which waits for every response to end: a live stream ends only with its execution.
    this.liveStreams.endAll();
    await this.server?.shutdown();
    await this.schedules?.stop();
    await this.engine?.stop();
    await this.runtime?.stop();
    this.stopEngineMetrics?.();
    this.server =
      this.schedules =
      this.engine =
      this.runtime =
      this.stopEngineMetrics =
        undefined;
    this.app = this.client = undefined;
  }

  /**
   * The API's server. An address Deno cannot listen on (not a host name, one that does not resolve, or not
   * this machine's) is the user's `--host`, said as such: it was an internal error with a stack trace.
   */
  private listen(): Deno.HttpServer<Deno.NetAddr> {
    try {
      return Deno.serve({
        port: this.options.port,
        hostname: this.options.hostname,
        onListen: () => {},
      }, (request) => this.app ? this.app.fetch(request) : notReady());
    } catch (e) {
      if (e instanceof Deno.errors.AddrInUse) throw e;
      throw new CliError(
        `cannot listen on '${this.options.hostname}' (--host or ${ENV.host}): ${(e as Error).message}`,
        ["Give an address of this machine, or 0.0.0.0 for every interface"],
        EXIT_USER_ERROR,
        { cause: e },
      );
    }
  }

  private async startComponents(): Promise<void> {
    const project = this.currentProject;
    // The API listens before the runtime starts, so that its port (chosen by the system for `--port 0`) is
    // in every sandbox's deny list: a tool with `net` may not drive the API (red team 4 F1). Until the app
    // is built the server answers 503.
    if (project && this.runsApi) this.server = this.listen();
    if (this.options.role === "all" || this.options.role === "runtime") {
      this.runtime = await RuntimeProcess.start(
        this.natsUrl,
        `${this.options.instanceId}-runtime`,
        this.runtimeEnv(),
      );
    }
    if (!project) return;
    await this.startEngineFor(project);
    if (this.runsApi) {
      this.client ??= await createExecutionClient({ nc: this.nc, bus: this.bus, project });
      this.stopEngineMetrics = collectEngineMetrics(this.nc, this.metrics).stop;
      this.app = this.buildApp(project, this.client);
    }
  }

  /**
   * The runtime's environment: NATS credentials, the stack's ports no sandbox may reach, and the projects
   * whose `.env`, `compozy.yaml` and `.compozy/` no sandbox may read: the one this process runs in (its
   * `.compozy/` holds the NATS passwords and the unpacked deployments) and the one it serves (red team 4 F3).
   */
  private runtimeEnv(): Record<string, string> {
    const env = { ...this.nats.runtimeEnv };
    const roots = [Deno.env.get(PROTECTED_ROOTS_ENV), dirname(resolve(this.options.stateDir))];
    if (this.options.projectDir) roots.push(resolve(this.options.projectDir));
    env[PROTECTED_ROOTS_ENV] = roots.filter(Boolean).join(delimiter);
    const denied = [env.COMPOZY_SANDBOX_DENY_NET ?? Deno.env.get("COMPOZY_SANDBOX_DENY_NET")];
    if (this.server) {
      const { hostname, port } = this.server.addr;
      denied.push(`${hostname.includes(":") ? `[${hostname}]` : hostname}:${port}`);
    }
    // The local model endpoints and MCP servers the project talks to (red team 8 S7), as the runtime starts.
    if (this.currentProject) {
      denied.push(...localUpstreams(this.currentProject, (name) => Deno.env.get(name)));
    }
    const list = denied.filter(Boolean).join(",");
    if (list) env.COMPOZY_SANDBOX_DENY_NET = list;
    return env;
  }

  private async startEngineFor(project: Project): Promise<void> {
    if (!this.runsEngine) return;
    this.engine = await startEngine({
      nc: this.nc,
      bus: this.bus,
      project,
      instanceId: this.options.instanceId,
    });
    this.client = this.engine.client;
    const kv = await new Kvm(this.nc).open(BUCKETS.schedules);
    this.schedules = new ScheduleRunner({
      project,
      client: this.engine.client,
      store: kvScheduleStore(kv),
      instanceId: this.options.instanceId,
    });
    await this.schedules.start();
  }

  private async swap(options: ReloadOptions): Promise<Project> {
    const current = this.currentProject;
    if (!current) throw new CliError(`A --role ${this.options.role} process has no project to reload`);
    const dir = options.projectDir ?? current.root;
    const project = await loadProject(
      dir,
      options.deployed && Deno.env.get(ALLOW_DEPLOYED_MCP_COMMANDS_ENV) !== "1"
        ? {
          refuseMcpCommands: `the server's operator may allow them with ${ALLOW_DEPLOYED_MCP_COMMANDS_ENV}=1`,
        }
        : {},
    );
    if (this.runsEngine) {
      try {
        await this.stopEngine();
        await this.startEngineFor(project);
      } catch (failure) {
        throw await this.restartEngineAfter(failure, current);
      }
    } else {
      this.client = await createExecutionClient({ nc: this.nc, bus: this.bus, project });
    }
    if (options.restartRuntime) this.runtime?.restart();
    if (this.runsApi) this.app = this.buildApp(project, this.client!);
    this.currentProject = project;
    return project;
  }

  /**
   * Stops the engine and its schedules (what started of them); once, even when a stop throws. The engine stops
   * even when its schedules' stop threw: forgotten while it ran, it would drive executions beside the engine
   * started next.
   */
  private async stopEngine(): Promise<void> {
    const { schedules, engine } = this;
    this.schedules = this.engine = undefined;
    try {
      await schedules?.stop();
    } finally {
      await engine?.stop();
    }
  }

  /**
   * After the engine failed to start on a reloaded project (NATS not answering, an error in its start), starts
   * it again on `previous`, the project it ran, as patient with NATS as a start: the reload then changes
   * nothing. The new engine starts only once the old one stopped (two engines on one store would both drive
   * its executions), so it is the old one that must start again: before, no engine ran at all while dev said
   * the previous definitions stayed in use. The API's client is then the restarted engine's.
   */
  private async restartEngineAfter(failure: unknown, previous: Project): Promise<EngineSwapError> {
    this.log.warn(
      "The engine did not start on the reloaded project ({error}); starting it on the previous one",
      {
        error: failure instanceof Error ? failure.message : String(failure),
      },
    );
    await this.stopFailedEngine();
    try {
      await this.patiently(
        "restarting the engine",
        () => this.startEngineFor(previous),
        () => this.stopEngine(),
      );
    } catch (restartFailure) {
      await this.stopFailedEngine();
      const error = new EngineSwapError(failure, restartFailure);
      this.log.error("{error}", { error: error.message });
      return error;
    }
    if (this.runsApi) this.app = this.buildApp(previous, this.client!);
    this.log.warn("The engine runs the previous project's definitions again");
    return new EngineSwapError(failure);
  }

  /** Stops what started of an engine whose start failed; a failure to stop is logged, the start's is told. */
  private async stopFailedEngine(): Promise<void> {
    try {
      await this.stopEngine();
    } catch (e) {
      this.log.warn("An engine whose start failed did not stop cleanly: {error}", {
        error: e instanceof Error ? e.message : String(e),
      });
    }
  }

  private buildApp(project: Project, client: ExecutionClient): Hono {
    return createApp({
      client,
      project,
      version: this.options.version,
      health: this.health,
      apiKey: this.options.apiKey,
      metrics: this.metrics,
      logs: jetStreamLogSource(this.nc),
      // A deployment must reach the engine and the runtime too: only a process running them all can load one.
      deploy: this.options.role === "all" ? (bundle) => this.deploy(bundle) : undefined,
      loopbackOnly: isLoopbackAddress(this.options.hostname),
      bodyLimitBytes: this.options.bodyLimitBytes,
      natsConnected: () => this.link.connected,
      liveStreams: this.liveStreams,
    });
  }
}

function notReady(): Response {
  return new ApiError(503, "starting", "The server is starting").getResponse();
}

/** Whether the API listens on loopback only (`127.0.0.0/8`, `::1`, `localhost`). */
function isLoopbackAddress(hostname: string): boolean {
  return hostname === "localhost" || hostname === "::1" || hostname === "[::1]" || /^127\./.test(hostname);
}

/** How long a starting engine or API waits for JetStream to answer its provisioning. */
const PROVISION_PATIENCE_MS = 60_000;

/**
 * Provisions, trying again while JetStream does not answer (a cluster electing its leaders, a loaded
 * machine: requests of the JetStream API time out) for at most PROVISION_PATIENCE_MS; provisioning is
 * idempotent. Any other refusal (a bad configuration, missing permissions) stops the start at once.
 */
async function provisionPatiently(
  nc: NatsConnection,
  settings: ProvisionOptions,
): Promise<Awaited<ReturnType<typeof provisionJetStream>>> {
  const deadline = Date.now() + PROVISION_PATIENCE_MS;
  const log = getLogger(["cli", "stack"]);
  for (let attempt = 1;; attempt++) {
    try {
      return await provisionJetStream(nc, settings);
    } catch (e) {
      if (!isTransientNatsError(e)) throw e;
      if (Date.now() + 1_000 >= deadline) {
        throw new Error(
          `JetStream did not answer the provisioning within ${PROVISION_PATIENCE_MS / 1_000} s`,
          {
            cause: e,
          },
        );
      }
      log.warn(
        "JetStream did not answer the provisioning (attempt {attempt}: {error}); trying again in 1 s",
        {
          attempt,
          error: e instanceof Error ? e.message : String(e),
        },
      );
      await new Promise((resolve) => setTimeout(resolve, 1_000));
    }
  }
}
