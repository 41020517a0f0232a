/**
 * Where a sandbox process finds its own code: the host thread's entry (`deno run <host>`), the tool
 * worker's setup module and SES's lockdown bundle. From a checkout these are the files next to this
 * module. A compiled `compozy` binary holds them inside itself, where the `deno` that runs sandboxes cannot
 * read them: it writes bundles of them to a cache folder at start (cli/sandbox_cache.ts) and sets them here
 * with {@linkcode configureSandboxModules}, before any sandbox starts.
 *
 * @module
 */
import { fileURLToPath } from "node:url";

export interface SandboxModules {
  /** The host thread's entry, a file path: what `deno run` starts. */
  hostPath: string;
  /** The module the tool's worker imports before the tool (it exports `serveTool`), as a `file:` URL. */
  workerUrl: string;
  /** SES's lockdown bundle, imported by the worker first, as a `file:` URL. */
  lockdownUrl: string;
  /** The files the worker loads before the tool: the sandbox's loader may read exactly these besides the tool's. */
  workerFiles: readonly string[];
  /**
   * The host thread's entry and the files it imports. Deno loads them as the main module, so they need no
   * read grant; they are listed so that no `write` grant reaches them (see {@linkcode loadedFiles}).
   */
  hostFiles: readonly string[];
}

let configured: SandboxModules | undefined;

/** The sandbox's modules in force: those set by {@linkcode configureSandboxModules}, else the checkout's. */
export function sandboxModules(): SandboxModules {
  return configured ??= checkoutModules();
}

/**
 * Every file of the sandbox's own that a sandbox process loads: a `write` grant covering one is refused
 * (runtime_code.ts `guardRuntimeWrites`). Code written to one runs in every later sandbox, of every tool, with
 * its grants and env values: the worker's files before the tool, the host thread's as the process itself
 * (red team 5: the worker's were guarded, the host's entry and its imports were not).
 */
export function loadedFiles(modules: SandboxModules = sandboxModules()): string[] {
  return [...modules.workerFiles, ...modules.hostFiles];
}

/** Sets the sandbox's modules for this process (the compiled binary's cached bundles). */
export function configureSandboxModules(modules: SandboxModules): void {
  configured = modules;
}

/** The source files of this checkout; the worker's module imports call_scope.ts, global_guard.ts,
 * node_guard.ts, node_knobs.ts, process_state.ts, buffer_pool.ts, output_encoding.ts and vsock_refusal.ts. */
function checkoutModules(): SandboxModules {
  const here = (file: string) => new URL(file, import.meta.url);
  // One self-contained file, which the sandbox (run with `--no-npm`) imports by path.
  const lockdown = new URL("./dist/lockdown.mjs", import.meta.resolve("ses"));
  const worker = here("./tool_worker.ts");
  const host = here("./worker_host.ts");
  return {
    hostPath: fileURLToPath(host),
    hostFiles: [host, here("./protocol.ts"), here("./frame_cipher.ts"), here("./kernel_limits.ts")].map((u) =>
      fileURLToPath(u)
    ),
    workerUrl: worker.href,
    lockdownUrl: lockdown.href,
    workerFiles: [
      worker,
      here("./call_scope.ts"),
      here("./global_guard.ts"),
      here("./node_guard.ts"),
      here("./node_knobs.ts"),
      here("./process_state.ts"),
      here("./buffer_pool.ts"),
      here("./output_encoding.ts"),
      here("./vsock_refusal.ts"),
      lockdown,
    ].map((u) => fileURLToPath(u)),
  };
}
