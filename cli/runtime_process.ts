/**
 * The system runtime as a supervised child process. Tool and agent code never shares a heap with the
 * engine, so the runtime is its own Deno process; it stays in our process group (a SIGKILL of the group
 * stops it too), and when it dies unexpectedly it is started again, with a growing delay, while the engine
 * retries the requests it did not answer.
 *
 * @module
 */
import { fileURLToPath } from "node:url";
import { getLogger } from "../pkg/logger/mod.ts";
import { denoExecutable, isCompiledBinary } from "../pkg/runtime/deno_executable.ts";
import { useCachedSandboxModules } from "./sandbox_cache.ts";
import { RUNTIME_COMMAND } from "./runtime_command.ts";

/**
 * How the runtime is started; the one place that knows its entry point and flags. `--exit-with-parent`
 * makes it exit when its stdin (a pipe we hold) closes, so that a parent killed with SIGKILL leaves no
 * runtime behind even outside its process group.
 */
export function runtimeCommand(natsUrl: string, instanceId: string): { command: string; args: string[] } {
  const flags = ["--nats-url", natsUrl, "--instance-id", instanceId, "--exit-with-parent"];
  if (isCompiledBinary()) {
    // A compiled binary has no `deno run` and no runtime source on disk: it runs itself, whose hidden
    // command starts the runtime (cli/main.ts). Its sandboxes need a real deno; say so now, not per tool.
    denoExecutable();
    return selfCommand([RUNTIME_COMMAND, ...flags]);
  }
  const main = fileURLToPath(new URL("../pkg/runtime/main.ts", import.meta.url));
  return { command: Deno.execPath(), args: ["run", "-A", "--unstable-worker-options", main, ...flags] };
}

/**
 * This program run again with `args`: the binary itself when compiled; from a checkout (where
 * `COMPOZY_AS_COMPILED=1` stands in for the compiled case in tests) `deno run` of the CLI's entry point.
 */
function selfCommand(args: string[]): { command: string; args: string[] } {
  if (Deno.build.standalone) return { command: Deno.execPath(), args };
  const main = fileURLToPath(new URL("../main.ts", import.meta.url));
  return { command: Deno.execPath(), args: ["run", "-A", "--unstable-worker-options", main, ...args] };
}

const MAX_RESTART_DELAY_MS = 5_000;
/** A child that lived this long was healthy; its next crash restarts it at once. */
const HEALTHY_AFTER_MS = 10_000;

export class RuntimeProcess {
  private child?: Deno.ChildProcess;
  private stopping = false;
  private restartDelay = 100;
  private exited?: Promise<void>;
  /** Children that were replaced by a restart and still finish their calls. */
  private readonly retired = new Set<Deno.ChildProcess>();
  private readonly log = getLogger(["runtime", "supervisor"]);

  private constructor(
    private readonly natsUrl: string,
    private readonly instanceId: string,
    private readonly env: Record<string, string>,
  ) {}

  /**
   * `env` adds to the inherited environment: NATS credentials and ports the sandboxes may not reach. A
   * compiled binary writes its sandbox modules to the cache first, so that a folder it cannot write is said
   * once, here, not by a runtime that exits and is restarted over and over.
   */
  static async start(
    natsUrl: string,
    instanceId: string,
    env: Record<string, string> = {},
  ): Promise<RuntimeProcess> {
    if (isCompiledBinary()) await useCachedSandboxModules();
    const runtime = new RuntimeProcess(natsUrl, instanceId, env);
    runtime.spawn();
    return runtime;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  /**
   * Starts a fresh child for new calls (after tool code changed) and retires the current one with SIGHUP: it
   * takes no more calls and exits once those it runs have ended, on the code they started with (each call is
   * bounded by its tool's time limit). A call sent meanwhile finds no runtime for a moment and is sent again.
   */
  restart(): void {
    const old = this.child;
    if (old) {
      this.retired.add(old);
      this.child = undefined;
      old.status.finally(() => this.retired.delete(old));
      signal(old, "SIGHUP");
    }
    this.restartDelay = 100;
    this.spawn();
  }

  /** SIGTERM (to the current child and to retired ones still draining), then SIGKILL after `graceMs`. */
  async stop(graceMs = 5_000): Promise<void> {
    this.stopping = true;
    await Promise.all([this.terminate(graceMs), ...[...this.retired].map((old) => stopChild(old, graceMs))]);
  }

  private spawn(): void {
    const { command, args } = runtimeCommand(this.natsUrl, this.instanceId);
    const startedAt = Date.now();
    const child = new Deno.Command(command, {
      args,
      env: { ...this.env, NATS_URL: this.natsUrl },
      // Held open and never written: its end is the runtime's cue that we are gone.
      stdin: "piped",
      stdout: "inherit",
      stderr: "inherit",
    }).spawn();
    this.child = child;
    this.exited = child.status.then((status) => {
      child.stdin.close().catch(() => {});
      // A retired child's end is its drain's end, not a crash.
      if (this.child !== child) return;
      this.child = undefined;
      // Exit code 0 is a requested stop (e.g. Ctrl-C reaches the whole process group), not a crash.
      if (this.stopping || (status.code === 0 && status.signal === null)) return;
      if (Date.now() - startedAt > HEALTHY_AFTER_MS) this.restartDelay = 100;
      this.log.warn("Runtime process {pid} exited with code {code}; restarting in {delay} ms", {
        pid: child.pid,
        code: status.code,
        delay: this.restartDelay,
      });
      setTimeout(() => {
        if (!this.stopping) this.spawn();
      }, this.restartDelay);
      this.restartDelay = Math.min(this.restartDelay * 2, MAX_RESTART_DELAY_MS);
    });
  }

  /** SIGTERM to the current child, then SIGKILL after `graceMs`. */
  private async terminate(graceMs: number): Promise<void> {
    const child = this.child;
    if (!child) return;
    await stopChild(child, graceMs);
    await this.exited;
  }
}

/** SIGTERM, then SIGKILL after `graceMs`; resolves once the child has exited. */
async function stopChild(child: Deno.ChildProcess, graceMs: number): Promise<void> {
  signal(child, "SIGTERM");
  const timer = setTimeout(() => signal(child, "SIGKILL"), graceMs);
  await child.status;
  clearTimeout(timer);
}

function signal(child: Deno.ChildProcess, name: Deno.Signal): void {
  try {
    child.kill(name);
  } catch {
    // Already exited.
  }
}
