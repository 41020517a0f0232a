/**
 * One sandbox process seen from the runtime: spawn it with the tool's permission flags and heap limit,
 * wait until the tool module is loaded, run one call at a time, and kill it with SIGKILL when a call runs
 * out of time or memory.
 *
 * The process stays in the runtime's process group on purpose, so that a SIGKILL of the group (what
 * `compozy dev` does to its children) reaches it. It cannot start processes of its own (`run` is never
 * granted), so the group of one sandbox is that one process. If the runtime dies without killing it, its
 * stdin closes and its host thread exits at once, even while the tool is busy.
 *
 * @module
 */
import { dirname } from "node:path";
import { pathToFileURL } from "node:url";
import type { ResolvedGrants } from "./grant_paths.ts";
import type { ToolModuleInfo } from "./import_policy.ts";
import { denoExecutable } from "./deno_executable.ts";
import { limitedCommand } from "./descriptor_limit.ts";
import { sandboxModules } from "./sandbox_modules.ts";
import { deniedNet, netDenyFlags } from "./net_deny.ts";
import { jsonTooDeep } from "./output_limits.ts";
import { scanStderr, type StderrScan } from "./sandbox_stderr.ts";
import { connectsOnly, kernelLimitsFor } from "./kernel_limits.ts";
import { processFlags, type SandboxPermissions, workerPermissions } from "./permissions.ts";
import {
  CALL_KEY_BYTES,
  CallCipher,
  encodeFrame,
  FrameReader,
  FromSandbox,
  LOG_LEVEL_OF_FRAME,
  LOG_LINE_COST,
  type LogLevel,
  ProtocolError,
  type SandboxConfig,
  type SandboxError,
  TOKEN_BYTES,
  ToSandbox,
} from "./protocol.ts";

const STDERR_TAIL_BYTES = 8 * 1024;
/**
 * Raw bytes a call may write to file descriptors 1 and 2 together (dropped, or kept as stderr's tail, but
 * read and scanned) before its process is killed.
 */
export const MAX_STRAY_BYTES_PER_CALL = 8 * 1024 * 1024;
const NO_TOKEN = new Uint8Array(0);
/**
 * A call without a result after this long is asked whether its host received its frame (a `probe`): a
 * pending `node:fs` read of fd 0 in the tool's worker can take the frame, and the call would otherwise
 * wait for its whole time limit (red team 3 H2). Calls that end sooner cost nothing: the process's one
 * timer (see `#armTimer`) serves the check and the time limit.
 */
const FRAME_CHECK_MS = 250;
/**
 * How long the host thread has to answer a probe. It answers from its own thread, in microseconds even
 * while the tool is busy, but the runtime reads the answer only after the frames written before it. A miss
 * runs the call again in a fresh process, and a call that had in fact begun then runs twice: this has to
 * outlast a runtime too loaded to read (2 s did not, with six `compozy dev` on two cores).
 */
const FRAME_ANSWER_MS = 5_000;

/** What a sandbox process is started with; processes with equal specs are interchangeable. */
export interface SandboxSpec {
  executePath: string;
  permissions: SandboxPermissions;
  env: Record<string, string>;
  heapLimitMb: number;
  maxOutputBytes: number;
  /** Deepest nesting of arrays and objects accepted in an output; checked here, before parsing. */
  maxOutputDepth: number;
  maxLogBytes: number;
  /** Descriptors the process may hold (`RLIMIT_NOFILE`, see descriptor_limit.ts). */
  maxDescriptors: number;
  /** The most bytes a file the tool writes may hold (`RLIMIT_FSIZE`, see kernel_limits.ts). */
  maxFileBytes: number;
  /** The most bytes of files one call may write, when the tool may write (memory_watch.ts). */
  maxCallWriteBytes: number;
  /** Threads it may keep runnable at once, V8's helpers aside (memory_watch.ts). */
  maxRunnableThreads: number;
}

/**
 * Why a process ended. `timeout`, `memory`, `writes` (a call wrote too much, memory_watch.ts), `threads` (it
 * kept too many threads runnable, memory_watch.ts), `canceled` (the
 * call's task was canceled) and `closed` are kills by the runtime; `stale`: its worker was left busy or
 * holding work by an earlier call (a call in flight then is not the tool's failure: run it again).
 */
export type DeathReason =
  | "timeout"
  | "memory"
  | "writes"
  | "threads"
  | "canceled"
  | "closed"
  | "protocol"
  | "exit"
  | "crash"
  | "stale";

export interface Death {
  reason: DeathReason;
  exitCode: number | null;
  signal: Deno.Signal | null;
  /** The last bytes the process wrote to stderr. */
  stderr: string;
  /** The process reported running out of memory somewhere in its stderr (V8's heap limit, the allocator). */
  outOfMemory: boolean;
  /** What the sandbox reported before dying (an exit call, a load error, a protocol fault). */
  error?: SandboxError;
  message?: string;
}

export type CallOutcome =
  | { kind: "result"; output: unknown; bytes: number }
  | { kind: "error"; error: SandboxError }
  | { kind: "died"; death: Death };

export type StartOutcome = { ok: true } | { ok: false; error?: SandboxError; death?: Death };

type LogSink = (level: LogLevel, message: string) => void;

interface PendingCall {
  id: number;
  resolve: (outcome: CallOutcome) => void;
  onLog: LogSink;
  logBytesLeft: number;
  /** When its frame was sent, and when its time limit ends (`performance.now()` times). */
  sentAt: number;
  deadline: number;
  /**
   * The frame check is done: the host was asked whether it received the call's frame (see `#probe`), or a
   * frame of the call came back, which only a host holding the call writes.
   */
  frameChecked: boolean;
  /** The wait for the host's answer to the frame check's probe (see `#probe`). */
  frameCheck: ReturnType<typeof setTimeout> | undefined;
  timeoutMs: number;
}

/**
 * A running sandbox. Create with {@linkcode SandboxProcess.spawn}, await `ready`, then `call()`.
 *
 * Failure semantics: a call ends exactly once, with the tool's result, its error, or the death of the
 * process (timeout, memory, crash). After a death no further call is accepted.
 */
export class SandboxProcess {
  readonly spec: SandboxSpec;
  /** The `--deny-net` entries it was spawned under (net_deny.ts): a later list retires it. */
  readonly netDenied: readonly string[];
  readonly ready: Promise<StartOutcome>;
  readonly exited: Promise<Death>;
  #child: Deno.ChildProcess;
  #stdin: WritableStreamDefaultWriter<Uint8Array>;
  readonly #cipher: CallCipher;
  /** The last large frame still being sealed, if any: frames are written in the order of their nonces. */
  #sealing: Promise<void> | undefined;
  #pending: PendingCall | undefined;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #timerDue = Infinity;
  #killedFor: { reason: DeathReason; message?: string } | undefined;
  #reported: SandboxError | undefined;
  #alive = true;
  #calls = 0;
  /**
   * Called when the running call reports that code of an ended call ran before it (`FromSandbox.unsettled`),
   * before any later frame of the call is read: the runner looks at the process's files again and kills it
   * (`stale`: the call runs elsewhere, its log lines and result dropped) if one was opened meanwhile.
   */
  onUnsettled: (() => void) | undefined;
  /** Raw stdout bytes of call number `#strayCall` so far. */
  #strayCall = -1;
  #strayBytes = 0;
  #resolveReady!: (outcome: StartOutcome) => void;

  private constructor(spec: SandboxSpec, child: Deno.ChildProcess, netDenied: readonly string[]) {
    this.spec = spec;
    this.netDenied = netDenied;
    this.#child = child;
    this.#stdin = child.stdin.getWriter();
    this.#stdin.closed.catch(() => {}); // a dead child's stdin errors; its death is reported elsewhere
    // The call key goes first: the host thread reads it before the worker, and so any tool code, exists.
    const key = crypto.getRandomValues(new Uint8Array(CALL_KEY_BYTES));
    this.#cipher = new CallCipher(key, "encrypt");
    this.#stdin.write(key).catch(() => {});
    this.ready = new Promise((resolve) => (this.#resolveReady = resolve));
    this.exited = this.#watch();
  }

  /**
   * Spawns a sandbox for `spec`, once import_policy.ts has checked the module and described it, and
   * grant_paths.ts has checked its path grants against the file system.
   */
  static spawn(
    spec: SandboxSpec,
    module: ToolModuleInfo,
    grants: ResolvedGrants,
    denoDir: string,
  ): SandboxProcess {
    const toolDir = dirname(spec.executePath);
    const modules = sandboxModules();
    const netDenied = deniedNet();
    const kernelLimits = kernelLimitsFor(grants.permissions, spec.maxFileBytes);
    const config: SandboxConfig = {
      toolUrl: pathToFileURL(spec.executePath).href,
      workerUrl: modules.workerUrl,
      lockdownUrl: modules.lockdownUrl,
      workerPermissions: workerPermissions(grants.permissions),
      worker: {
        maxOutputBytes: spec.maxOutputBytes,
        maxLogBytes: spec.maxLogBytes,
        logLineCost: LOG_LINE_COST,
        nodeProcess: module.needsNodeProcess,
        nodeBuiltins: module.nodeBuiltins,
        connectsOnly: connectsOnly(grants.permissions.net),
      },
      kernelLimits,
    };
    const args = [
      "run",
      "--no-config",
      "--no-lock",
      "--no-remote",
      "--no-npm",
      "--no-prompt",
      "--unstable-worker-options",
      `--v8-flags=--max-old-space-size=${spec.heapLimitMb},--disallow-code-generation-from-strings`,
      // The loader may read the checked graph's files and the worker bootstrap, never the folder: a text
      // import of a file next to the tool would otherwise be read with the loader's rights.
      ...processFlags(grants.permissions, [...module.files, ...modules.workerFiles], {
        read: grants.denyRead,
        write: grants.denyWrite,
      }),
      ...netDenyFlags(netDenied),
      // For the host thread to install the kernel limits; it revokes this before the worker starts.
      ...(kernelLimits === undefined ? [] : [`--allow-ffi=${kernelLimits.library}`]),
      modules.hostPath,
      JSON.stringify(config),
    ];
    const limited = limitedCommand(denoExecutable(), args, spec.maxDescriptors);
    const child = new Deno.Command(limited.command, {
      args: limited.args,
      cwd: toolDir,
      clearEnv: true,
      // Without this, Deno 2.9 puts a `node` shim folder on the sandbox's PATH (writing it under DENO_DIR
      // at start-up). The tool cannot read this name unless granted `env: true`.
      // The cache the runtime keeps every write grant away from (deno_cache_dir.ts): with the environment
      // cleared, a sandbox used its user's default cache instead, and a runtime with `DENO_DIR` set guarded
      // a folder no sandbox used (outside break attempt brk35). `DENO_*` is denied to the tool like the above.
      env: { ...spec.env, DENO_DISABLE_NODE_SHIM: "1", DENO_DIR: denoDir },
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    return new SandboxProcess(spec, child, netDenied);
  }

  get pid(): number {
    return this.#child.pid;
  }

  get alive(): boolean {
    return this.#alive;
  }

  /** Alive and not being killed: fit for a call. */
  get usable(): boolean {
    return this.#alive && this.#killedFor === undefined;
  }

  /** Bytes of files one call may write (memory_watch.ts); undefined for a tool that may not write. */
  get maxCallWriteBytes(): number | undefined {
    const write = this.spec.permissions.write;
    return write === true || write.length > 0 ? this.spec.maxCallWriteBytes : undefined;
  }

  /** Threads it may keep runnable at once, V8's helpers aside (memory_watch.ts). */
  get maxRunnableThreads(): number {
    return this.spec.maxRunnableThreads;
  }

  /** Has served a call and runs none now: any CPU it uses is work an ended call left behind. */
  get betweenCalls(): boolean {
    return this.#alive && !this.#pending && this.#calls > 0;
  }

  /** How many calls this process has started. */
  get calls(): number {
    return this.#calls;
  }

  /**
   * Runs one call; `payload` is the JSON of `{ input, ctx }`. The process must be ready and idle.
   * On time-out the process is killed and the call ends at once with `died` / `timeout`.
   */
  call(id: number, payload: Uint8Array, timeoutMs: number, onLog: LogSink): Promise<CallOutcome> {
    if (this.#pending) throw new Error(`sandbox ${this.pid} is already running call ${this.#pending.id}`);
    if (!this.#alive) throw new Error(`sandbox ${this.pid} has exited`);
    this.#calls++;
    const sentAt = performance.now();
    const deadline = sentAt + timeoutMs;
    return new Promise((resolve) => {
      this.#pending = {
        id,
        resolve,
        onLog,
        logBytesLeft: this.spec.maxLogBytes,
        sentAt,
        deadline,
        frameChecked: false,
        frameCheck: undefined,
        timeoutMs,
      };
      this.#armTimer(Math.min(sentAt + FRAME_CHECK_MS, deadline));
      this.#send(ToSandbox.call, id, payload);
    });
  }

  /**
   * One timer per process serves the frame check and the time limit of the running call. It is set only when
   * nothing is due sooner, and left set when a call ends: at a call a millisecond it is set about once per
   * {@linkcode FRAME_CHECK_MS} rather than set and cleared per call. When it fires it acts for the call
   * running then, if anything of it is due, and is set again for what is due next.
   */
  #armTimer(due: number): void {
    if (this.#timer !== undefined && this.#timerDue <= due) return;
    clearTimeout(this.#timer);
    this.#timerDue = due;
    this.#timer = setTimeout(() => this.#onTimer(), Math.max(0, due - performance.now()));
  }

  #onTimer(): void {
    this.#timer = undefined;
    this.#timerDue = Infinity;
    const pending = this.#pending;
    if (!pending || !this.#alive) return;
    const now = performance.now();
    if (now >= pending.deadline) return this.kill("timeout", `no result after ${pending.timeoutMs} ms`);
    if (!pending.frameChecked && now >= pending.sentAt + FRAME_CHECK_MS) this.#probe(pending);
    this.#armTimer(pending.frameChecked ? pending.deadline : pending.sentAt + FRAME_CHECK_MS);
  }

  /**
   * Seals and writes one frame. A small frame is sealed at once and written at once unless a large one is
   * still being sealed (Web Crypto, asynchronous): frames go out in the order of their nonces.
   */
  #send(type: number, id: number, payload: Uint8Array): void {
    const sealed = this.#cipher.seal(id, payload);
    if (this.#sealing === undefined && sealed instanceof Uint8Array) return this.#write(type, id, sealed);
    const next: Promise<void> = (this.#sealing ?? Promise.resolve())
      .then(() => sealed)
      .then((bytes) => this.#write(type, id, bytes))
      // Web Crypto failing to seal leaves the call without a frame: its probe then retires the process.
      .catch(() => {})
      .finally(() => {
        if (this.#sealing === next) this.#sealing = undefined;
      });
    this.#sealing = next;
  }

  #write(type: number, id: number, sealed: Uint8Array): void {
    // A dead child's stdin rejects: its death is reported by the exit watcher.
    this.#stdin.write(encodeFrame(NO_TOKEN, type, id, sealed)).catch(() => {});
  }

  /**
   * Asks the host whether it received call `id`'s frame. A host that missed it cannot open the probe (its
   * nonce is one further) and retires itself (`stale`); one whose channel a partial read broke never
   * answers. Either way the call runs again in a fresh process, at once rather than at its time limit.
   */
  #probe(pending: PendingCall): void {
    const id = pending.id;
    pending.frameChecked = true;
    pending.frameCheck = setTimeout(
      () => this.kill("stale", `its host did not confirm call ${id}'s frame: something else read it`),
      FRAME_ANSWER_MS,
    );
    this.#send(ToSandbox.probe, id, new Uint8Array(0));
  }

  #heldByHost(pending: PendingCall): void {
    pending.frameChecked = true;
    clearTimeout(pending.frameCheck);
  }

  /** SIGKILLs the process; a call in flight ends now with `died` and this reason. */
  kill(reason: DeathReason, message?: string): void {
    if (!this.#alive) return;
    this.#killedFor ??= { reason, message };
    try {
      this.#child.kill("SIGKILL");
    } catch {
      // Already exited: the exit watcher reports it.
    }
    this.#settle({ kind: "died", death: this.#deathSoFar(null, null) });
  }

  #settle(outcome: CallOutcome): void {
    const pending = this.#pending;
    if (!pending) return;
    this.#pending = undefined;
    clearTimeout(pending.frameCheck);
    pending.resolve(outcome);
  }

  #deathSoFar(exitCode: number | null, signal: Deno.Signal | null, stderr?: StderrScan): Death {
    const reason = this.#killedFor?.reason ?? (this.#reported?.kind === "exit" ? "exit" : "crash");
    return {
      reason,
      exitCode,
      signal,
      stderr: stderr?.tail ?? "",
      outOfMemory: stderr?.outOfMemory ?? false,
      error: this.#reported,
      message: this.#killedFor?.message,
    };
  }

  async #watch(): Promise<Death> {
    const [status, stderr] = await Promise.all([
      this.#child.status,
      scanStderr(this.#child.stderr, STDERR_TAIL_BYTES, (bytes) => this.#onStray("stderr", bytes)),
      this.#readFrames().catch((e) => this.kill("protocol", e instanceof Error ? e.message : String(e))),
    ]);
    this.#alive = false;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    const death = this.#deathSoFar(status.code, status.signal, stderr);
    this.#resolveReady({ ok: false, error: this.#reported, death });
    this.#settle({ kind: "died", death });
    return death;
  }

  async #readFrames(): Promise<void> {
    let reader: FrameReader | undefined;
    let head: Uint8Array = new Uint8Array(0);
    for await (const chunk of this.#child.stdout) {
      if (reader) {
        reader.push(chunk);
        continue;
      }
      // The first TOKEN_BYTES bytes are the frame token, written before any tool code ran.
      head = concat(head, chunk);
      if (head.length < TOKEN_BYTES) continue;
      reader = new FrameReader(head.slice(0, TOKEN_BYTES), this.#maxFrameBytes(), {
        frame: (type, id, payload) => this.#onFrame(type, id, payload),
        stray: (bytes) => this.#onStray("stdout", bytes.length),
      });
      reader.push(head.subarray(TOKEN_BYTES));
    }
  }

  /** Outputs and log lines are capped in the sandbox; errors carry stacks and causes (at most ~200 KB). */
  #maxFrameBytes(): number {
    return Math.max(this.spec.maxOutputBytes, this.spec.maxLogBytes) + 1024 * 1024;
  }

  #onFrame(type: number, id: number, payload: Uint8Array): void {
    // Any frame of the running call (its log lines, the probe's answer) shows that its host holds it. The
    // probe's answer comes after every line the call logged before it: a runtime slow to read a chatty
    // call must not take that lag for a lost frame (the call ran twice under load).
    if (this.#pending?.id === id) this.#heldByHost(this.#pending);
    const level = LOG_LEVEL_OF_FRAME[type];
    if (level) return this.#log(id, level, payload);
    switch (type) {
      case FromSandbox.ready:
        return this.#resolveReady({ ok: true });
      case FromSandbox.loadError:
        this.#reported = this.#parseError(payload);
        return this.#resolveReady({ ok: false, error: this.#reported });
      case FromSandbox.exit:
        this.#reported = this.#parseError(payload);
        return this.kill("exit");
      case FromSandbox.stale:
        return this.kill("stale", decode(payload));
      case FromSandbox.received:
        return;
      case FromSandbox.unsettled:
        // Before the frames after it (the call's log lines, its result) are read: a kill here drops them.
        if (this.#pending?.id === id) this.onUnsettled?.();
        return;
      case FromSandbox.result:
        if (this.#pending?.id === id) this.#settle(this.#result(payload));
        return;
      case FromSandbox.error:
        if (this.#pending?.id === id) this.#settle({ kind: "error", error: this.#boundedError(payload) });
        return;
      default:
        throw new ProtocolError(`unknown frame type ${type}`);
    }
  }

  /**
   * The host thread bounds outputs already, but the tool can post a result of its own making: its size and
   * depth are checked again here, on the bytes, before anything parses them.
   */
  #result(payload: Uint8Array): CallOutcome {
    const { maxOutputBytes, maxOutputDepth } = this.spec;
    const tooLarge = (message: string, bytes?: number): CallOutcome => ({
      kind: "error",
      error: { kind: "output_too_large", name: "RangeError", message, bytes },
    });
    if (payload.length > maxOutputBytes) return tooLarge("the output is too large", payload.length);
    const text = decode(payload);
    if (jsonTooDeep(text, maxOutputDepth)) {
      return tooLarge(`the output nests arrays and objects more than ${maxOutputDepth} levels deep`);
    }
    return { kind: "result", output: JSON.parse(text), bytes: payload.length };
  }

  /**
   * A call's error report crosses the bus like an output, so it is held to the same bound: the worker caps
   * each string of it, but the tool can post a report of its own making. One over the bound is still the
   * tool's failure (`tool_threw`), never a reply the bus refuses (which surfaced as `runtime_unavailable`).
   */
  #boundedError(payload: Uint8Array): SandboxError {
    if (payload.length <= this.spec.maxOutputBytes) return this.#parseError(payload);
    return {
      kind: "threw",
      name: "Error",
      message:
        `the tool threw an error whose report is ${payload.length} bytes, over the limit of ${this.spec.maxOutputBytes}`,
    };
  }

  /** An error report holds the tool's thrown value and a cause chain of four: a little deeper than outputs. */
  #parseError(payload: Uint8Array): SandboxError {
    const text = decode(payload);
    if (jsonTooDeep(text, this.spec.maxOutputDepth + 16)) {
      throw new ProtocolError(`an error report nests more than ${this.spec.maxOutputDepth + 16} levels deep`);
    }
    return JSON.parse(text) as SandboxError;
  }

  /**
   * Bytes the tool wrote to file descriptor 1 directly are dropped: nothing tells which call wrote them,
   * and a line must never land under another call's ids. Bytes on stderr are kept as its tail only. Either,
   * written while no call runs, comes from work an ended call left behind, which would go on costing the
   * runtime a read of every byte (red team 3: a timer chain writing 1 MB to fd 2 every 30 ms took 17% of the
   * runtime's core): end it. Stderr is a pipe of its own, so bytes a call wrote may be read just after its
   * result; that retires a process that wrote raw stderr, which costs a fresh start, never a call.
   */
  #onStray(stream: "stdout" | "stderr", bytes = 0): void {
    if (!this.#pending && this.#calls > 0) {
      this.kill("stale", `it wrote to its ${stream} after its call ended`);
      return;
    }
    // During a call, raw output is dropped but still read: past a bound the call ends, rather than the
    // runtime draining gigabytes for it (red team 4 F5: 3 GB in 15 s, the call succeeded). Stderr counts too
    // (red team 5: 174 MB in 4 s were read and scanned for out-of-memory reports, the call succeeded).
    if (this.#strayCall !== this.#calls) [this.#strayCall, this.#strayBytes] = [this.#calls, 0];
    this.#strayBytes += bytes;
    if (this.#strayBytes > MAX_STRAY_BYTES_PER_CALL) {
      this.kill(
        "protocol",
        `it wrote over ${MAX_STRAY_BYTES_PER_CALL} bytes to its ${stream} outside frames`,
      );
    }
  }

  /**
   * Delivers log bytes to the call they belong to, within its budget (a line costs its bytes plus
   * {@linkcode LOG_LINE_COST}, so that many short or empty lines are not nearly free); other output is dropped.
   */
  #log(id: number, level: LogLevel, bytes: Uint8Array): void {
    const pending = this.#pending;
    if (!pending || pending.id !== id || pending.logBytesLeft <= 0) return;
    const kept = bytes.length > pending.logBytesLeft ? bytes.subarray(0, pending.logBytesLeft) : bytes;
    pending.logBytesLeft -= kept.length + LOG_LINE_COST;
    const message = decode(kept).replace(/\n$/, "");
    if (message !== "") pending.onLog(level, message);
  }
}

const textDecoder = new TextDecoder();
function decode(bytes: Uint8Array): string {
  return textDecoder.decode(bytes);
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a, 0);
  out.set(b, a.length);
  return out;
}
