/**
 * Runs user tools in sandbox processes: the public API of the tool half of the system runtime.
 *
 * A call is checked against the tool's input schema here, runs in a warm sandbox process of its key
 * (module, permissions, env) with a time limit, and its output is checked against the output schema here.
 * See docs/runtime-sandbox.md for the permission model.
 *
 * Time limits (as Temporal separates schedule-to-start from start-to-close): the call's `timeoutMs` bounds the
 * tool's own run, from when the call enters its sandbox. The wait for a sandbox before that (a cold start, a
 * queue behind busy sandboxes) is bounded apart, by the larger of `startTimeoutMs` and `timeoutMs`, and fails
 * `tool_timeout` with `details.phase` "waiting for a sandbox". Counted in one limit, a short `timeout` failed
 * calls that never ran: a timed-out call's sandbox is killed, so its retry waited for a cold start (0.7-1 s)
 * and failed before the tool was entered (outside review D1).
 *
 * Failure semantics: `run()` never throws; it returns `{ ok: false, failure }` with a
 * {@linkcode ToolFailure}. A failure ends only its own call: a process that timed out, crashed or ran out of
 * memory is killed and replaced, other calls are untouched. A tool may run more than once for one task
 * (retries, a runtime that crashed before the result was recorded): tools with side effects should use
 * `ctx.taskExecId` as their idempotency key.
 *
 * @module
 */
import { dirname, isAbsolute } from "node:path";
import { denoCacheDir } from "./deno_cache_dir.ts";
import {
  carvedOutPathsAt,
  coversOrInside,
  DENO_CACHE_WHY,
  envFilesAt,
  guardWrites,
  projectRoots,
  protectedRoots,
  resolveGrants,
} from "./grant_paths.ts";
import { guardRuntimeWrites } from "./runtime_code.ts";
import { checkToolModule, moduleChanged, type ToolModuleInfo } from "./import_policy.ts";
import { loadedFiles } from "./sandbox_modules.ts";
import { MemoryWatch } from "./memory_watch.ts";
import { OpenFileWatch } from "./open_files.ts";
import { DEFAULT_MAX_DESCRIPTORS, MIN_MAX_DESCRIPTORS } from "./descriptor_limit.ts";
import { DEFAULT_MAX_FILE_BYTES, MIN_MAX_FILE_BYTES } from "./kernel_limits.ts";
import { DEFAULT_MAX_CALL_WRITE_BYTES, DEFAULT_MAX_RUNNABLE_THREADS } from "./memory_watch.ts";
import { DEFAULT_MAX_OUTPUT_DEPTH } from "./output_limits.ts";
import { normalizePermissions, permissionsKey, sandboxEnv, type ToolPermissions } from "./permissions.ts";
import { SandboxPool } from "./pool.ts";
import { deniedNet } from "./net_deny.ts";
import type { CallContext, LogLevel } from "./protocol.ts";
import { type FailureContext, failureFromDeath, failureFromError } from "./sandbox_failures.ts";
import { redactErrorStacks, stackRoot } from "./stack_redaction.ts";
import { type CallOutcome, SandboxProcess, type SandboxSpec } from "./sandbox_process.ts";
import { describeViolations, SchemaCache } from "./schema_validator.ts";
import { redactFailure, type Redactor, redactorFor } from "./secret_redaction.ts";
import { ToolFailure } from "./tool_failure.ts";

export { ToolFailure } from "./tool_failure.ts";
export type { ToolFailureCode } from "./tool_failure.ts";
export type { ToolPermissions } from "./permissions.ts";

/** One call of a tool. */
export interface ToolCall {
  toolId: string;
  /** Absolute path of the tool's `.ts` module. */
  executePath: string;
  input: unknown;
  permissions?: ToolPermissions;
  /** Values for the sandbox's environment; the tool can read only the names in `permissions.env`. */
  env?: Record<string, string>;
  /**
   * Bounds the tool's run, from when the call enters its sandbox. The wait for a sandbox before it is bounded
   * by the larger of this and the runner's `startTimeoutMs` (see the module's doc).
   */
  timeoutMs: number;
  inputSchema?: Record<string, unknown>;
  outputSchema?: Record<string, unknown>;
  context: CallContext;
  onLog?: (entry: { level: LogLevel; message: string }) => void;
  /**
   * Aborted when the call's task is canceled: the sandbox process running the call is killed at once and
   * the call fails `tool_canceled` (the pool starts a replacement), instead of running to its time-out.
   */
  signal?: AbortSignal;
}

export type ToolResult =
  | { ok: true; output: unknown; durationMs: number }
  | { ok: false; failure: ToolFailure; durationMs: number };

export interface ToolRunnerOptions {
  /** Idle processes kept per key after calls end. Default 2. */
  maxWarmPerKey?: number;
  /** How long a process beyond `maxWarmPerKey` stays idle before it is stopped, ms. Default 10 s. */
  surplusIdleMs?: number;
  /** Sandbox processes alive at once, idle or busy. Default: twice the CPU count, at least 4. */
  maxProcesses?: number;
  /**
   * Processes beyond `maxProcesses`, each for a tool that holds none while all are busy, so that one tool's
   * hanging calls cannot starve the others (red team 4 F2). Default: half of `maxProcesses`, at least 1.
   */
  reserveProcesses?: number;
  /** V8 heap limit of each sandbox, MB. Default 256. */
  heapLimitMb?: number;
  /** Resident memory ceiling of each sandbox, MB (covers ArrayBuffers, outside the heap). Default 2 × heap + 64. */
  memoryLimitMb?: number;
  /** Largest output, as UTF-8 JSON. Default 4 MiB. */
  maxOutputBytes?: number;
  /** Deepest nesting of arrays and objects in an output. Default 64. */
  maxOutputDepth?: number;
  /** Log bytes per call (console output included); the rest is dropped. Default 256 KiB. */
  maxLogBytes?: number;
  /**
   * Time for a new sandbox to load its tool module. Default 10 s. A call's wait for a sandbox is bounded by the
   * larger of this and the call's `timeoutMs`, so that a call always outlasts one cold start.
   */
  startTimeoutMs?: number;
  /**
   * File descriptors each sandbox process may hold (`RLIMIT_NOFILE`; Deno uses ~30 of them): bounds the
   * sockets, and so the kernel socket memory, a tool can hold, and the open-file check's cost. Default 128,
   * at least 64. See descriptor_limit.ts.
   */
  maxDescriptors?: number;
  /**
   * The most bytes a file a tool writes may hold (`RLIMIT_FSIZE`, for tools that may write): a write past it
   * fails with "File too large", the file keeping the bytes up to it. Default 256 MiB, at least 1 MiB. See
   * kernel_limits.ts.
   */
  maxFileBytes?: number;
  /**
   * The most bytes of files one call of a tool that may write may write, in all (`write_bytes` of
   * /proc/<pid>/io, sampled every 50 ms, so a call may overshoot it by what it writes in that time): past it
   * the process is killed and the call fails `tool_writes_exceeded`. Default 1 GiB, at least 1 MiB. See
   * memory_watch.ts.
   */
  maxCallWriteBytes?: number;
  /**
   * The most threads (V8's helpers aside) a sandbox process may keep runnable at once, counted every 200 ms
   * (between calls too): past it by more than two threads on average over 2 s, the process is killed and the call
   * fails `tool_cpu_exceeded`. Default 4, at least 2. See memory_watch.ts.
   */
  maxRunnableThreads?: number;
}

export interface ToolRunnerStats {
  /** Sandbox processes alive, and how many are idle, running a call, or starting. */
  processes: number;
  idle: number;
  busy: number;
  starting: number;
  /** Calls waiting for a process. */
  waiting: number;
  /** Processes started since the runner was created. */
  spawned: number;
  pids: number[];
}

const encoder = new TextEncoder();
/** Sandboxes a call may find unfit (see `stale` in sandbox_process.ts) before it fails. */
const STALE_RETRIES = 3;

/**
 * Runs tool calls in sandboxed, pooled `deno run` processes.
 *
 * @example
 * ```ts ignore
 * import { ToolRunner } from "./tool_runner.ts";
 * const runner = new ToolRunner();
 * const result = await runner.run({
 *   toolId: "greet",
 *   executePath: "/srv/project/tools/greet.ts",
 *   input: { name: "Ada" },
 *   timeoutMs: 5_000,
 *   context: { workflowId: "w", workflowExecId: "we", taskId: "t", taskExecId: "te", attempt: 1 },
 * });
 * if (!result.ok) console.error(result.failure.code, result.failure.message);
 * await runner.close();
 * ```
 */
export class ToolRunner {
  readonly #limits: Required<ToolRunnerOptions>;
  readonly #pool: SandboxPool;
  readonly #memory: MemoryWatch;
  /** The regular files each process holds, looked at before and after each call (see open_files.ts). */
  readonly #files: OpenFileWatch;
  /** The checked graph each sandbox was spawned for, to tell a load that met a save (see the pool). */
  readonly #modules = new WeakMap<SandboxProcess, ToolModuleInfo>();
  /**
   * For each process granted `read: true` (or `write: true`): the roots whose protected paths it must be denied,
   * and its denials.
   */
  readonly #envDenied = new WeakMap<SandboxProcess, { roots: string[]; denied: Set<string> }>();
  readonly #schemas = new SchemaCache();
  #nextCallId = 0;
  #closed = false;

  constructor(opts: ToolRunnerOptions = {}) {
    const heapLimitMb = positiveInteger("heapLimitMb", opts.heapLimitMb ?? 256);
    const maxProcesses = positiveInteger(
      "maxProcesses",
      opts.maxProcesses ?? Math.max(4, navigator.hardwareConcurrency * 2),
    );
    this.#limits = {
      maxWarmPerKey: nonNegativeInteger("maxWarmPerKey", opts.maxWarmPerKey ?? 2),
      surplusIdleMs: nonNegativeInteger("surplusIdleMs", opts.surplusIdleMs ?? 10_000),
      maxProcesses,
      reserveProcesses: nonNegativeInteger(
        "reserveProcesses",
        opts.reserveProcesses ?? Math.max(1, Math.ceil(maxProcesses / 2)),
      ),
      heapLimitMb,
      memoryLimitMb: positiveInteger("memoryLimitMb", opts.memoryLimitMb ?? heapLimitMb * 2 + 64),
      maxOutputBytes: positiveInteger("maxOutputBytes", opts.maxOutputBytes ?? 4 * 1024 * 1024),
      maxOutputDepth: positiveInteger("maxOutputDepth", opts.maxOutputDepth ?? DEFAULT_MAX_OUTPUT_DEPTH),
      maxLogBytes: positiveInteger("maxLogBytes", opts.maxLogBytes ?? 256 * 1024),
      startTimeoutMs: positiveInteger("startTimeoutMs", opts.startTimeoutMs ?? 10_000),
      maxDescriptors: atLeast(
        "maxDescriptors",
        opts.maxDescriptors ?? DEFAULT_MAX_DESCRIPTORS,
        MIN_MAX_DESCRIPTORS,
      ),
      maxFileBytes: atLeast("maxFileBytes", opts.maxFileBytes ?? DEFAULT_MAX_FILE_BYTES, MIN_MAX_FILE_BYTES),
      maxCallWriteBytes: atLeast(
        "maxCallWriteBytes",
        opts.maxCallWriteBytes ?? DEFAULT_MAX_CALL_WRITE_BYTES,
        MIN_MAX_FILE_BYTES,
      ),
      maxRunnableThreads: atLeast(
        "maxRunnableThreads",
        opts.maxRunnableThreads ?? DEFAULT_MAX_RUNNABLE_THREADS,
        2,
      ),
    };
    this.#files = new OpenFileWatch(this.#limits.maxDescriptors);
    this.#memory = new MemoryWatch(this.#limits.memoryLimitMb * 1024 * 1024);
    this.#pool = new SandboxPool({
      maxWarmPerKey: this.#limits.maxWarmPerKey,
      maxProcesses: this.#limits.maxProcesses,
      reserve: this.#limits.reserveProcesses,
      surplusIdleMs: this.#limits.surplusIdleMs,
      startTimeoutMs: this.#limits.startTimeoutMs,
      spawn: async (spec) => {
        // Refused for what it is before resolving: resolving scans a granted folder for symlinks, and Deno's
        // cache is big enough to be refused for its size instead (the reason must say "Deno's cache").
        const denoDir = await denoCacheDir();
        guardWrites(
          { permissions: spec.permissions, denyRead: [], denyWrite: [] },
          [denoDir],
          (dir) => `it reaches ${dir}, ${DENO_CACHE_WHY}`,
          coversOrInside,
        );
        const [module, resolved] = await Promise.all([
          checkToolModule(spec.executePath),
          resolveGrants(spec.permissions, dirname(spec.executePath)),
        ]);
        const grants = await guardRuntimeWrites(
          resolved,
          [...module.files, ...loadedFiles()],
          await projectRoots(dirname(spec.executePath)),
        );
        const process = SandboxProcess.spawn(spec, module, grants, denoDir);
        if (spec.permissions.read === true || spec.permissions.write === true) {
          this.#envDenied.set(process, {
            roots: await protectedRoots(dirname(spec.executePath)),
            // The deny flags of its unscoped grant (read and write are never both `true`).
            denied: new Set([...grants.denyRead, ...grants.denyWrite]),
          });
        }
        this.#memory.watch(process);
        this.#modules.set(process, module);
        return process;
      },
      changedSinceSpawn: (spec, process) => {
        const module = this.#modules.get(process);
        return module ? moduleChanged(spec.executePath, module) : Promise.resolve(false);
      },
      startFailure: (spec, outcome) => {
        const ctx = this.#failureContext(undefined, spec.executePath, this.#limits.startTimeoutMs);
        if (outcome.error) return failureFromError(ctx, outcome.error);
        return failureFromDeath(ctx, outcome.death!);
      },
    });
  }

  /** Runs one call. Never throws: a failure is returned as `{ ok: false, failure }`. */
  async run(call: ToolCall): Promise<ToolResult> {
    const started = performance.now();
    // The call's env values never appear in its logs or its failure (see secret_redaction.ts).
    const redact = call.env ? redactorFor(call.env) : undefined;
    try {
      const output = await this.#run(call, started, redact);
      return { ok: true, output, durationMs: performance.now() - started };
    } catch (e) {
      const failure = e instanceof ToolFailure
        ? e
        : new ToolFailure("tool_crashed", `Tool "${call.toolId}" failed in the runtime: ${String(e)}`, {
          cause: e,
        });
      return {
        ok: false,
        failure: redact ? redactFailure(failure, redact) : failure,
        durationMs: performance.now() - started,
      };
    }
  }

  /**
   * Starts a sandbox for a tool ahead of its first call, unless one is already idle or starting, or the
   * process limit is reached. `env` must be what the calls will pass, since it is part of the pool key.
   *
   * @throws {ToolFailure} when the module is refused or cannot be loaded.
   */
  async warm(
    executePath: string,
    permissions?: ToolPermissions,
    env?: Record<string, string>,
  ): Promise<void> {
    this.#assertOpen();
    const { key, spec } = this.#sandboxFor(executePath, permissions, env);
    await this.#pool.warm(key, spec);
  }

  /** Kills every sandbox process; calls in flight fail `tool_crashed`. Resolves when all have exited. */
  async close(): Promise<void> {
    this.#closed = true;
    this.#memory.stop();
    await this.#pool.close();
  }

  stats(): ToolRunnerStats {
    return this.#pool.stats();
  }

  async #run(call: ToolCall, started: number, redact: Redactor | undefined): Promise<unknown> {
    this.#assertOpen();
    const waitBoundMs = this.#waitBoundMs(call.timeoutMs);
    const payload = this.#payload(call);
    if (call.inputSchema) this.#check("input", call, call.input, payload.length, call.inputSchema);
    const { key, spec } = this.#sandboxFor(call.executePath, call.permissions, call.env);
    let outcome: CallOutcome;
    for (let attempt = 1;; attempt++) {
      if (call.signal?.aborted) {
        throw new ToolFailure(
          "tool_canceled",
          `Tool "${call.toolId}" was canceled before it ran: ${reasonText(call.signal.reason)}`,
        );
      }
      // Each run waits afresh (a run again after a stale sandbox is a new start): the bound counts from here.
      const wait = {
        boundMs: waitBoundMs,
        deadline: (attempt === 1 ? started : performance.now()) + waitBoundMs,
      };
      let process = await this.#pool.acquire(key, spec, wait, call.signal);
      // A process unfit for a call is retired and the call gets another (leftovers of issue 10):
      // - a `.env*` file created at a project root after the process started is not in its `--deny-read`
      //   (Deno's flags name paths). Only processes granted `read: true` are concerned. Every stale one is
      //   retired, however many a burst of calls left idle (the pool hands them back last in, first out); one
      //   started now lists the file, so the processes alive bound the look unless new files keep appearing;
      // - a regular file opened since the process's last call ended (a `node:fs` open an ended call started,
      //   completed between calls): the descriptor would be there for this call.
      for (let retired = 0;; retired++) {
        const unfit = await this.#unfit(process);
        if (unfit === undefined) break;
        process.kill("stale", unfit);
        this.#pool.release(process, false);
        if (retired >= this.#limits.maxProcesses + this.#limits.reserveProcesses) {
          throw new ToolFailure(
            "tool_crashed",
            `Tool "${call.toolId}" found no fit sandbox: ${retired + 1} were retired, ` +
              `the last because ${unfit}`,
          );
        }
        process = await this.#pool.acquire(key, spec, wait, call.signal);
      }
      // Code of an ended call that ran between calls may have completed a `node:fs` open after the look
      // above, before the call's code ran (break attempt brk39): the worker says so before that code runs,
      // and a file open then retires the process before anything of the call (a log line, its result) is
      // taken; the call runs again in another process. The descriptors are listed, not counted: a file
      // opened while a descriptor of Deno's own closed leaves the count as it was.
      const checked = process;
      checked.onUnsettled = () => {
        const leftOpen = this.#files.check(checked, { list: true });
        if (leftOpen !== undefined) {
          checked.kill("stale", `code of an ended call ran before this call and ${leftOpen}`);
        }
      };
      // The tool's own limit starts now, as the call enters its sandbox (SandboxProcess.call times it).
      outcome = await this.#call(process, call, payload, redact);
      // A call that left a regular file open (a `node:fs` descriptor, which its end cannot close) keeps its
      // result, but its process is retired before any other call could use the descriptor.
      const leftOpen = outcome.kind === "died" ? undefined : this.#files.check(process);
      if (leftOpen !== undefined) process.kill("stale", `its call ended and ${leftOpen}`);
      this.#pool.release(process, outcome.kind !== "died");
      // A sandbox left unfit by an earlier call did not run this one (at most began it: a tool may run
      // more than once anyway): run it in another, a bounded number of times.
      if (outcome.kind !== "died" || outcome.death.reason !== "stale" || attempt >= STALE_RETRIES) break;
    }
    const ctx = this.#failureContext(call.toolId, call.executePath, call.timeoutMs);
    if (outcome.kind === "error") {
      const failure = failureFromError(ctx, outcome.error);
      // The tool's error, as the cause: its stack keeps the tool's own frames only (stack_redaction.ts).
      if (failure.cause !== undefined) redactErrorStacks(failure.cause, await stackRoot(call.executePath));
      throw failure;
    }
    if (outcome.kind === "died") throw failureFromDeath(ctx, outcome.death);
    if (call.outputSchema) this.#check("output", call, outcome.output, outcome.bytes, call.outputSchema);
    return outcome.output;
  }

  #call(
    process: SandboxProcess,
    call: ToolCall,
    payload: Uint8Array,
    redact: Redactor | undefined,
  ): Promise<CallOutcome> {
    this.#nextCallId = this.#nextCallId >= 0xffffffff ? 1 : this.#nextCallId + 1;
    const onLog = call.onLog;
    const sink = (level: LogLevel, message: string) => {
      try {
        onLog?.({ level, message: redact ? redact(message) : message });
      } catch {
        // A failing log consumer must not fail the call.
      }
    };
    const signal = call.signal;
    if (!signal) return process.call(this.#nextCallId, payload, call.timeoutMs, sink);
    // One call cannot be stopped inside a warm sandbox (its worker may be in a loop): the process goes.
    const cancel = () => process.kill("canceled", `its task was canceled: ${reasonText(signal.reason)}`);
    const outcome = process.call(this.#nextCallId, payload, call.timeoutMs, sink);
    if (signal.aborted) cancel(); // between the acquire and now
    else signal.addEventListener("abort", cancel, { once: true });
    return outcome.finally(() => signal.removeEventListener("abort", cancel));
  }

  /**
   * How long one run of a call may wait for a sandbox: at least one cold start (`startTimeoutMs`, which the
   * pool gives a start before it kills it), and at least the call's own limit, the longest a busy sandbox of
   * the same tool can take to free up.
   */
  #waitBoundMs(timeoutMs: number): number {
    return Math.max(this.#limits.startTimeoutMs, timeoutMs);
  }

  #payload(call: ToolCall): Uint8Array {
    let json: string;
    try {
      json = JSON.stringify({ input: call.input ?? null, ctx: call.context });
    } catch (cause) {
      throw new ToolFailure("tool_input_invalid", `Input of tool "${call.toolId}" is not JSON-serialisable`, {
        cause,
      });
    }
    return encoder.encode(json);
  }

  /** `bytes`: the size of the value's JSON text, which bounds how many errors are listed. */
  #check(
    which: "input" | "output",
    call: ToolCall,
    value: unknown,
    bytes: number,
    schema: Record<string, unknown>,
  ): void {
    const code = which === "input" ? "tool_input_invalid" : "tool_output_invalid";
    let violations;
    try {
      violations = this.#schemas.get(schema)(value, bytes);
    } catch (cause) {
      throw new ToolFailure(
        code,
        `The ${which} schema of tool "${call.toolId}" is invalid: ${String(cause)}`,
        {
          cause,
        },
      );
    }
    if (violations.length === 0) return;
    throw new ToolFailure(
      code,
      `Tool "${call.toolId}" ${which} is invalid: ${describeViolations(violations)}`,
      {
        details: { violations },
      },
    );
  }

  #sandboxFor(
    executePath: string,
    permissions: ToolPermissions | undefined,
    env: Record<string, string> | undefined,
  ): { key: string; spec: SandboxSpec } {
    if (!isAbsolute(executePath)) {
      throw new ToolFailure("tool_module_invalid", `Tool module path must be absolute: "${executePath}"`);
    }
    const perms = normalizePermissions(permissions, dirname(executePath));
    const sandboxVars = sandboxEnv(perms, env);
    const key = `${executePath}\n${permissionsKey(perms)}\n${
      JSON.stringify(Object.entries(sandboxVars).sort())
    }`;
    const spec: SandboxSpec = {
      executePath,
      permissions: perms,
      env: sandboxVars,
      heapLimitMb: this.#limits.heapLimitMb,
      maxOutputBytes: this.#limits.maxOutputBytes,
      maxOutputDepth: this.#limits.maxOutputDepth,
      maxLogBytes: this.#limits.maxLogBytes,
      maxDescriptors: this.#limits.maxDescriptors,
      maxFileBytes: this.#limits.maxFileBytes,
      maxCallWriteBytes: this.#limits.maxCallWriteBytes,
      maxRunnableThreads: this.#limits.maxRunnableThreads,
    };
    return { key, spec };
  }

  /** Why `process` must not run a call now (see `#run`), or undefined when it may. */
  async #unfit(process: SandboxProcess): Promise<string | undefined> {
    const unlisted = await this.#newProtectedPath(process);
    if (unlisted !== undefined) return `its deny flags do not list ${unlisted}`;
    // Last, with no await between them and the call: a change after them is the next call's to see.
    if (process.netDenied !== deniedNet()) {
      return "the NATS servers it may not reach changed since it started";
    }
    // An open that completes later is the call's to answer for.
    const leftOpen = this.#files.check(process);
    if (leftOpen !== undefined) return `between calls ${leftOpen}`;
    return undefined;
  }

  /**
   * A protected path now at one of the process's roots that is missing from its `--deny-read` (or
   * `--deny-write`), if any: a `.env*` file, or an entry of a server's `.compozy/` made after it started (a
   * later deployment).
   */
  async #newProtectedPath(process: SandboxProcess): Promise<string | undefined> {
    const watched = this.#envDenied.get(process);
    if (!watched) return undefined;
    for (const path of await envFilesAt(watched.roots)) if (!watched.denied.has(path)) return path;
    for (const path of await carvedOutPathsAt(watched.roots)) if (!watched.denied.has(path)) return path;
    return undefined;
  }

  #failureContext(toolId: string | undefined, executePath: string, timeoutMs: number): FailureContext {
    return {
      toolId,
      executePath,
      timeoutMs,
      heapLimitMb: this.#limits.heapLimitMb,
      maxOutputBytes: this.#limits.maxOutputBytes,
      maxFileBytes: this.#limits.maxFileBytes,
      maxCallWriteBytes: this.#limits.maxCallWriteBytes,
      maxRunnableThreads: this.#limits.maxRunnableThreads,
    };
  }

  #assertOpen(): void {
    if (this.#closed) throw new ToolFailure("tool_crashed", "The tool runner is closed");
  }
}

function reasonText(reason: unknown): string {
  return reason instanceof Error ? reason.message : String(reason);
}

function positiveInteger(name: string, value: number): number {
  if (!Number.isInteger(value) || value <= 0) {
    throw new RangeError(
      `Cannot create ToolRunner as '${name}' must be a positive integer: current value is ${value}`,
    );
  }
  return value;
}

function atLeast(name: string, value: number, min: number): number {
  if (!Number.isInteger(value) || value < min) {
    throw new RangeError(
      `Cannot create ToolRunner as '${name}' must be an integer of at least ${min}: current value is ${value}`,
    );
  }
  return value;
}

function nonNegativeInteger(name: string, value: number): number {
  if (!Number.isInteger(value) || value < 0) {
    throw new RangeError(
      `Cannot create ToolRunner as '${name}' must be a non-negative integer: current value is ${value}`,
    );
  }
  return value;
}
