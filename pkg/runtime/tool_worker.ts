/**
 * Runs inside the sandbox's worker, the only thread that evaluates tool code. Importing this module
 * prepares the worker's globals; the bootstrap imports it before the tool so this happens before any tool
 * code runs:
 * - console output and writes to `Deno.stdout`/`Deno.stderr`/`process.stdout` become log messages to the
 *   host thread, capped per call, so megabytes of output never cross the wire;
 * - `Deno.stdin` reads nothing (the host thread owns the real stdin);
 * - `Deno.exit`, `process.exit` and `close` report an exit, which the runtime treats as a crash (in a
 *   worker they would otherwise end the worker silently and leave the call hanging);
 * - `Worker` is removed and `process.getBuiltinModule` refuses the modules that run strings as code
 *   (see import_policy.ts);
 * - uncaught errors after load go to the logs instead of killing the worker;
 * - nothing of one call outlives it: the intrinsics and host globals are frozen before the tool loads and
 *   the own keys of `globalThis` are reset after each call (global_guard.ts); timers, intervals and
 *   fetches a call started are cancelled when it returns, and a log line is attributed to the call whose
 *   code wrote it, so a late line is dropped, never relabelled (call_scope.ts).
 *
 * Trust: the permission boundary is the worker's permission set and the host thread, which re-checks every
 * message it forwards. The freezing above keeps calls of one worker apart; the host thread backs it by
 * killing a worker that does not take its next call at once or that reports work left behind.
 *
 * @module
 */
import { format } from "node:util";
import { CallScope, type NodeDgram, type NodeNet } from "./call_scope.ts";
import { freezeRealm, freezeShapeOf, snapshotGlobals } from "./global_guard.ts";
import { NodeStateGuard } from "./node_guard.ts";
import { refuseModuleKnobs } from "./node_knobs.ts";
import { encodeOutput, OutputTooLarge } from "./output_encoding.ts";
import { guardProcessState, guardWaitAsync } from "./process_state.ts";
import { bufferPoolReset, type PooledBuffers } from "./buffer_pool.ts";
import type { LogLevel, SandboxError, WorkerCall, WorkerMessage, WorkerSettings } from "./protocol.ts";
import { refuseVsock } from "./vsock_refusal.ts";

type ToolFunction = (input: unknown, ctx: unknown) => unknown;

// Worker globals are not in Deno's default (window) types.
const workerScope = globalThis as unknown as {
  name: string;
  postMessage: (message: WorkerMessage) => void;
  addEventListener: (type: "message", listener: (e: MessageEvent) => void) => void;
  removeEventListener: (type: "message", listener: (e: MessageEvent) => void) => void;
  close: () => void;
};
const post = workerScope.postMessage.bind(workerScope);
// Taken before any tool code runs: the tool may replace these globals during a call.
const { parse, stringify } = JSON;
const ErrorClass = Error;
const denoErrors = Deno.errors;
// The host passes the settings as the worker's name: it is set before any module here evaluates.
const limits = parse(workerScope.name) as WorkerSettings;
const exitWorker = Deno.exit;
const originalSetTimeout = setTimeout;
const TEXT_CAP = 16 * 1024;

/**
 * The port the host sends calls on, and the memory the worker acknowledges calls in (`[0]`: the last call
 * taken, `[1]`: the last call after which the event loop turned; worker_host.ts `checkWorker`): the host's
 * first message, taken before any tool code runs. Both are held here only: the global object's listener
 * list is reachable by the tool, this port's is not, and no tool code can write an acknowledgement.
 */
const { callPort, acks } = await new Promise<{ callPort: MessagePort; acks: Uint32Array }>((resolve) => {
  const take = (e: MessageEvent) => {
    const shared = Array.isArray(e.data) ? e.data[1] : undefined;
    if (e.ports.length !== 1 || !(shared instanceof SharedArrayBuffer)) return;
    workerScope.removeEventListener("message", take);
    resolve({ callPort: e.ports[0], acks: new Uint32Array(shared) });
  };
  workerScope.addEventListener("message", take);
});
const acknowledge = Atomics.store;
/** An error's name is a class name, not prose; it appears twice in the failure (message and details). */
const NAME_CAP = 256;

const scope = new CallScope((what) => post(["leftover", what]), freezeShapeOf);
// Deno's core, taken before guardExitsAndEvaluators removes it from the tool's reach.
const core = (Deno as unknown as Record<symbol, { core: DenoCore }>)[
  (Deno as unknown as { internal: symbol }).internal
].core;
const wait = Atomics.wait;
let serving = false;
const nodeState = new NodeStateGuard();
let logBudget = limits.maxLogBytes;

/**
 * Sends a log line of the running call, charging its budget; the host enforces the same budget in bytes.
 * A line costs its length plus `logLineCost` (protocol.ts `LOG_LINE_COST`), so that empty and short lines
 * run the budget out too: uncharged, a loop of `console.log("")` made the runtime read a frame per line
 * until the call's time-out; charged a byte, one call's 131,072 one-character lines kept it busy for minutes.
 * A line written by code of no running call (work an ended call left behind, the module's load) is dropped.
 */
function emit(level: LogLevel, text: () => string, id = scope.current()): void {
  if (id <= 0 || logBudget <= 0) return;
  let line = text();
  const cost = limits.logLineCost;
  if (line.length + cost >= logBudget) line = line.slice(0, Math.max(0, logBudget - cost));
  logBudget -= line.length + cost;
  post(["log", id, level, line]);
}

function captureConsole(): void {
  const methods: Record<string, LogLevel> = {
    debug: "debug",
    log: "info",
    info: "info",
    dir: "info",
    dirxml: "info",
    table: "info",
    warn: "warn",
    error: "error",
    trace: "error",
  };
  const target = console as unknown as Record<string, unknown>;
  for (const [method, level] of Object.entries(methods)) {
    target[method] = (...args: unknown[]) => emit(level, () => format(...args));
  }
  console.assert = (condition?: boolean, ...args: unknown[]) => {
    if (!condition) emit("error", () => `Assertion failed${args.length ? `: ${format(...args)}` : ""}`);
  };
}

function captureStdio(): void {
  const decoder = new TextDecoder();
  // The streams are made at each read, not once here: one made here was frozen with the realm (it hangs
  // off `Deno`), and its `getWriter()`, so every `pipeTo`, threw a TypeError (found in break attempt brk44).
  // A stream of its own per read also means that no call can lock one for the next.
  const sink = (level: LogLevel) => ({
    write: (p: Uint8Array) => (emit(level, () => decoder.decode(p)), Promise.resolve(p.length)),
    writeSync: (p: Uint8Array) => (emit(level, () => decoder.decode(p)), p.length),
    get writable() {
      return new WritableStream<Uint8Array>({ write: (p) => emit(level, () => decoder.decode(p)) });
    },
    isTerminal: () => false,
    close: () => {},
  });
  const stdin = {
    read: () => Promise.resolve(null),
    readSync: () => null,
    get readable() {
      return new ReadableStream<Uint8Array>({ start: (c) => c.close() });
    },
    isTerminal: () => false,
    setRaw: () => {},
    close: () => {},
  };
  Object.defineProperty(Deno, "stdout", { value: sink("info") });
  Object.defineProperty(Deno, "stderr", { value: sink("error") });
  Object.defineProperty(Deno, "stdin", { value: stdin });
}

interface NodeProcess {
  stdout: { write: (chunk: unknown) => boolean };
  stderr: { write: (chunk: unknown) => boolean };
  getBuiltinModule: (id: string) => unknown;
  binding: (name: string) => unknown;
}

function guardExitsAndEvaluators(): void {
  // Node's `process.exit` ends in `Deno.exit`, so this covers both.
  Deno.exit = (code?: number): never => {
    post(["exit", Math.max(0, scope.current()), typeof code === "number" ? code : 0]);
    return exitWorker(code);
  };
  workerScope.close = () => Deno.exit(0);
  // The channel to the host thread is the worker's own (`post`, bound above). Left to the tool, work of an
  // ended call (an `Atomics.waitAsync`, which no call scope cancels) posted ["log", <next id>, …] and the host
  // delivered the ended call's data as a log line of the next call, under that call's ids.
  delete (globalThis as { postMessage?: unknown }).postMessage;
  delete (globalThis as { Worker?: unknown }).Worker;
  // The Cache API writes to Deno's own store with no write grant, under a key shared by every sandbox (the
  // main module is worker_host.ts): a channel between tools and a way to poison another tool's cache.
  delete (globalThis as { caches?: unknown }).caches;
  refuseWebGpu();
  // Other unstable APIs are absent from the worker (`Deno.cron`, `Deno.openKv`, `Deno.listenDatagram`,
  // `Deno.connectQuic`) or need `ffi` (never granted); an unstable exit that still happens is named as such
  // from the process's stderr (sandbox_failures.ts).
  refuseVsock(Deno, "a tool sandbox");
  // Deno's internals (`Deno[Deno.internal].core.evalContext`) compile strings despite the V8 flag, and
  // code compiled there may `import()` a computed `data:` URL past the import policy.
  delete (Deno as unknown as Record<symbol, unknown>)[(Deno as unknown as { internal: symbol }).internal];
}

/**
 * WebGPU needs no permission in Deno, and the first `navigator.gpu.requestAdapter()` loads the host's
 * graphics stack into the sandbox process (libEGL, Mesa and its LLVM shader compiler, a Vulkan loader, the
 * GPU driver, which opens the `/dev/dri` and `/dev/nvidia*` devices no grant names). Those libraries find
 * more native code through environment variables they read then: a tool granted `env: true` and a `write`
 * folder wrote a shared library there, named it in `__EGL_VENDOR_LIBRARY_FILENAMES`, and its constructor ran
 * in the sandbox, read the project's `.env` and wrote it outside the grant (outside break attempt brk-sbx3
 * G3). Nor would a GPU's memory count towards the tool's memory limit. No tool needs it: the accessor is
 * removed before any tool code runs, so the GPU is never set up in a sandbox.
 */
function refuseWebGpu(): void {
  let holder: object | null = navigator;
  while (holder !== null && !Object.hasOwn(holder, "gpu")) holder = Object.getPrototypeOf(holder);
  if (holder !== null && !Reflect.deleteProperty(holder, "gpu")) {
    throw new ErrorClass("navigator.gpu could not be removed from the tool's worker");
  }
}

/**
 * Deno 2.9 answers `Deno.execPath()` without a read grant, and `Deno.args`, Node's `process.argv`,
 * `argv0`, `execPath` and `title` hold the sandbox's command line: the Deno binary's path (often under a
 * user's home) and the sandbox's configuration (the runtime's checkout, SES's path, the worker's
 * permissions). A tool learns the binary's path only with read access to it, as Deno documents for
 * `execPath`, and gets no command line (`Deno.args` is empty, `process.argv` holds only the binary). Run
 * before the realm's freeze, which makes these members read-only; a worker's permissions do not change
 * (`revoke` is refused, `request` cannot prompt), so the answer is taken once.
 */
function guardCommandLine(): void {
  const { path, readable, shown } = binary;
  const execPath = () => {
    if (!readable) {
      throw new denoErrors.NotCapable(
        "Requires read access to <exec_path>, run again with the --allow-read flag",
      );
    }
    return path;
  };
  Object.defineProperty(Deno, "execPath", { value: execPath, enumerable: true });
  Object.defineProperty(Deno, "args", { value: Object.freeze([]), enumerable: true });
  if (!limits.nodeProcess) return;
  const process = (globalThis as unknown as { process: Record<string, unknown> }).process;
  for (const name of ["execPath", "argv0", "title"]) {
    // `execPath` is an accessor that cannot be redefined: through its setter.
    if (Object.getOwnPropertyDescriptor(process, name)?.configurable === false) process[name] = shown;
    else {Object.defineProperty(process, name, {
        value: shown,
        writable: true,
        enumerable: true,
        configurable: true,
      });}
  }
  process.argv = [shown];
}

/**
 * Node's `process` must be set up before the realm is frozen: its setup extends shared objects, which
 * lockdown forbids afterwards (global_guard.ts). It costs a fresh worker about 25 ms (more on a busy
 * machine), so only a tool whose graph imports `node:` built-ins or names `process` gets it
 * (`nodeProcess`, from import_policy.ts). For the others the global is replaced by a getter that throws a
 * clear error: code that reaches it by a computed name would otherwise meet Node's setup failing on the
 * frozen realm (a TypeError of Deno's making), never an unguarded `process`.
 */
function guardNodeProcess(): void {
  if (limits.nodeProcess) return guardProcess((globalThis as unknown as { process: NodeProcess }).process);
  const { enumerable } = Object.getOwnPropertyDescriptor(globalThis, "process") ?? { enumerable: false };
  Object.defineProperty(globalThis, "process", {
    configurable: true,
    enumerable,
    get() {
      throw new TypeError(
        "Node's process is not set up for this tool: name `process` in its code, or import node:process",
      );
    },
  });
}

/**
 * `process.nextTick` callbacks run from Node's own queue, without the promise hook: a chain of them an ended
 * call left ran unseen after its reset and replaced `atob` for the next call (break attempt brk39). Each
 * callback now carries the phase that queued it, and one that runs between calls is noted like a reaction
 * (`CallScope.noteBetweenCalls`). It is not stopped during a call, as a reaction of an ended call is: Deno's
 * own Node layer queues ticks through `process.nextTick` in the context of the call that made a socket, and
 * some run during a later call (a `node:http` tool's next call then always ran in a fresh process). Node's
 * internal ticks (a stream's events) are not seen this way; they follow from I/O, whose completions are
 * reactions.
 */
function guardNextTick(process: Record<string, unknown>): void {
  const nextTick = process.nextTick as (callback: unknown, ...args: unknown[]) => void;
  process.nextTick = function (callback: unknown, ...args: unknown[]): void {
    if (typeof callback !== "function") return nextTick(callback, ...args);
    const owner = scope.owner();
    nextTick(() => {
      scope.noteBetweenCalls(owner);
      callback(...args);
    });
  };
}

function guardProcess(process: NodeProcess): void {
  guardNextTick(process as unknown as Record<string, unknown>);
  process.stdout.write = (chunk: unknown) => (emit("info", () => String(chunk)), true);
  process.stderr.write = (chunk: unknown) => (emit("error", () => String(chunk)), true);
  const getBuiltinModule = process.getBuiltinModule.bind(process);
  process.getBuiltinModule = (id: string) => {
    // The same built-ins as the import policy refuses (import_policy.ts), Node's internal `_…` ones
    // included, reached at run time.
    if (
      /^(node:)?(vm|worker_threads|module|repl|timers|timers\/promises|v8|trace_events|wasi|sqlite|_.*)$/
        .test(id)
    ) {
      throw new denoErrors.NotCapable(`Built-in "${id}" is refused in a tool sandbox`);
    }
    const builtin = getBuiltinModule(id);
    refuseModuleKnobs(builtin, refuseKnob);
    // Recorded before the tool holds it (a no-op for one recorded already), so what a call does to it is
    // undone when the call ends.
    if (serving) nodeState.recordModule({ default: builtin });
    return builtin;
  };
  // Node's deprecated internals (`tcp_wrap`'s raw TCP handles, …) open sockets that the call's tracking of
  // `node:net` does not see (call_scope.ts); no tool needs them.
  const binding = process.binding.bind(process) as (name: string) => Record<string, NativeClass>;
  process.binding = (name: string) => refuseKnob(`process.binding("${String(name)}")`);
  refuseProcessKnobs(process as unknown as Record<string, unknown>);
  // Node's stdin reads the process's fd 0, the call channel: a listener armed by one call took later calls'
  // frames, and each ran again in a fresh process. An empty stream, like `Deno.stdin` above.
  const { Readable } = getBuiltinModule("node:stream") as {
    Readable: { from: (items: unknown[]) => unknown };
  };
  const stdin = Readable.from([]);
  Object.defineProperty(process, "stdin", { get: () => stdin, configurable: true, enumerable: true });
  // After process.stdout and stderr exist: Node makes them on first use by wrapping fd 1 and 2.
  guardRawDescriptors(getBuiltinModule, binding);
}

/**
 * Node hands out objects of classes no module exports (`node:fs/promises`' `FileHandle`), whose prototypes
 * the put-back of Node's objects did not know: a call replaced `FileHandle.prototype.readFile`, and every
 * later call's `readFile`, another execution's, ran it with its own file (break attempt brk41,
 * `test/runtime/node_instance_state_test.ts`). Most of them are emitters, and every emitter is set up by
 * `EventEmitter.init`: while serving, the prototype of each one made is recorded (once) before the tool
 * holds it, so its own properties are put back after each call like a module's. The tool's own emitter
 * classes are recorded the same way: what a call sets on their prototypes is put back too.
 */
function watchEmitters(events: { EventEmitter: { init: (...args: unknown[]) => unknown } }): void {
  const { EventEmitter } = events;
  const init = EventEmitter.init;
  const { apply } = Reflect;
  const { getPrototypeOf } = Reflect;
  EventEmitter.init = function (this: unknown, ...args: unknown[]) {
    if (typeof this === "object" && this !== null) {
      if (serving) nodeState.recordInstance(this);
      else {
        // Made before calls are served (the module's load): recorded as they are once it has loaded, with
        // what the load set on them, like the modules (a call may reach them through the load's objects).
        const prototype = getPrototypeOf(this);
        if (prototype !== null) emittersBeforeServing.add(prototype);
      }
    }
    return apply(init, this, args);
  };
}

/** The prototypes of the emitters made before calls are served (see {@linkcode watchEmitters}). */
const emittersBeforeServing = new Set<object>();

type NativeClass = { prototype: Record<string, unknown> };

/**
 * The sandbox process's fd 0 is the call channel (worker_host.ts), and Node's layer reaches the process's
 * descriptors by number with no permission: `fs.read(0, …)`, `fs.readFile(0)`, `fs.createReadStream` with
 * `fd: 0`, `new net.Socket({ fd: 0 })` (any pipe or socket of the process, not only 0-2) and
 * `new tty.ReadStream(0)`. A pending read took later calls' frames (ciphertext: each such call ran again in
 * a fresh process, ~250 ms plus a cold start). `node:fs` keeps a table of descriptors per worker: its
 * entry 0 is closed here (the host thread's stdin is another table's). Wrapping an existing descriptor in a
 * socket is refused on the native classes' prototypes (`open`), and a TTY handle never starts reading
 * (`readStart` fails with EBADF: it can only wrap fds 0-2 without a read grant to all files). A tool
 * has no descriptor of its own to wrap (it cannot start processes), so nothing legitimate is lost. The
 * replacements cannot be replaced back: not writable, not configurable, the originals held only here.
 */
function guardRawDescriptors(
  getBuiltinModule: (id: string) => unknown,
  binding: (name: string) => Record<string, NativeClass>,
): void {
  (getBuiltinModule("node:fs") as { closeSync: (fd: number) => void }).closeSync(0);
  const fix = (target: Record<string, unknown>, name: string, value: unknown) =>
    Object.defineProperty(target, name, { value, writable: false, enumerable: true, configurable: false });
  for (const [module, name] of [["pipe_wrap", "Pipe"], ["tcp_wrap", "TCP"], ["udp_wrap", "UDP"]]) {
    fix(binding(module)[name].prototype, "open", () => refuseDescriptor(`${name.toLowerCase()} handle`));
  }
  if (limits.connectsOnly) refuseDatagramPorts(binding("udp_wrap").UDP.prototype, fix);
  const tty = binding("tty_wrap").TTY.prototype;
  const stream = Object.getPrototypeOf(tty) as Record<string, unknown>;
  const { getWindowSize } = tty;
  const { readStart } = stream;
  const { apply } = Reflect;
  // A brand check of V8's own (not the prototype chain, which the tool can change): only a TTY passes it.
  const isTty = (handle: unknown) => {
    try {
      apply(getWindowSize as () => unknown, handle, [[]]);
      return true;
    } catch {
      return false;
    }
  };
  const UV_EBADF = -9;
  fix(stream, "readStart", function (this: unknown, ...args: unknown[]) {
    return isTty(this) ? UV_EBADF : apply(readStart as () => unknown, this, args);
  });
}

/**
 * A tool whose `net` grant lets it connect only (`net: true`, or a host without a port) binds no UDP port
 * (outside break attempt brk36). Its kernel filter refuses `listen`, but UDP has none: `dgram`'s
 * `bind(port)` received at once, and Deno's check passes any port of a host named without one, so the tool
 * took the port of a local UDP service another tool sends to (a collector, a resolver) and read what that
 * tool sent. The filter cannot read the port (it lies behind a pointer), so the native handle's `bind` and
 * `bind6`, which every bind of `node:dgram` goes through (`send` binds port 0 first), refuse any port but 0
 * with `EPERM`, as a `bind` error of Node's own. A socket on an ephemeral port (a client's) still sends and
 * hears the answers to what it sent. The replacements are fixed like the descriptor guard's.
 */
function refuseDatagramPorts(
  udp: Record<string, unknown>,
  fix: (target: Record<string, unknown>, name: string, value: unknown) => void,
): void {
  const UV_EPERM = -1;
  const { apply } = Reflect;
  for (const name of ["bind", "bind6"]) {
    const bind = udp[name] as (...args: unknown[]) => number;
    fix(udp, name, function (this: unknown, ip: unknown, port: unknown, ...rest: unknown[]) {
      return Number(port) === 0 ? apply(bind, this, [ip, 0, ...rest]) : UV_EPERM;
    });
  }
}

function refuseDescriptor(what: string): never {
  throw new denoErrors.NotCapable(
    `opening a ${what} on an existing file descriptor is refused in a tool sandbox (fd 0 is its call channel)`,
  );
}

/**
 * Refused as a permission (`tool_permission_denied`): a knob of the whole process set by one call would
 * act on every later call of the sandbox (see docs/runtime-sandbox.md, "process-wide knobs").
 */
function refuseKnob(what: string): never {
  throw new denoErrors.NotCapable(
    `${what} is refused in a tool sandbox: it changes the whole sandbox process, not only this call`,
  );
}

/**
 * Node's process-wide setters: an uncaught-exception callback of one call would run in a later one;
 * source maps change every later stack. `v8` and `trace_events` are
 * refused as modules (import_policy.ts), `inspector` needs `sys` (never granted), `dlopen` needs `ffi`,
 * `umask` needs `sys`, `kill` needs `run`.
 */
function refuseProcessKnobs(process: Record<string, unknown>): void {
  for (const name of ["setUncaughtExceptionCaptureCallback", "setSourceMapsEnabled"]) {
    process[name] = () => refuseKnob(`process.${name}`);
  }
  // A report holds the process's environment and writes files: Deno's is an object of its own.
  const report = process.report as Record<string, unknown> | undefined;
  if (typeof report === "object" && report !== null) {
    for (const name of ["writeReport", "getReport"]) {
      report[name] = () => refuseKnob(`process.report.${name}`);
    }
  }
}

/**
 * `Deno.watchFs` (and Node's `fs.watch`, which rides on it) is refused. Each folder a watcher covers is an
 * inotify watch, a kernel object counted per user of the host, not per process: a `read: true` tool's module
 * load watched `/usr`, `/root`, `/work`, `/tmp`… and its warm process held 98,470 watches (half of the user's
 * `max_user_watches`, ~100 MB of kernel memory its resident-memory limit does not see) for every later call;
 * two such processes leave the runtime's user none, and then `compozy dev`'s reload, other tools and every
 * program of that user fail to watch anything (outside break attempt brk35). A call cannot wait on a file
 * any other way than by polling it, which a tool can do (`Deno.stat` in a loop).
 */
function refuseFileWatchers(): void {
  Deno.watchFs = () => {
    throw new denoErrors.NotCapable(
      "Deno.watchFs is refused in a tool sandbox: file watches are a kernel resource shared by every " +
        "process of the host's user; poll the file instead",
    );
  };
}

/**
 * `Deno.permissions.revoke` takes a permission from the worker for good: a call that revoked `read` made
 * every later call of the process, of other executions, fail `tool_permission_denied`. A permission
 * cannot be given back, so revoking is refused (on the class's prototype, which the realm's freeze fixes).
 */
function refusePermissionRevoke(): void {
  const prototype = Object.getPrototypeOf(Deno.permissions) as Record<string, unknown>;
  for (const name of ["revoke", "revokeSync"]) {
    if (typeof prototype[name] === "function") prototype[name] = () => refuseKnob(`Deno.permissions.${name}`);
  }
}

/**
 * `async_hooks.createHook(…).enable()` installs promise hooks for the whole worker: a hook one call enabled
 * ran its callbacks for every promise of later calls. `createHook` is a named export, which no patch of the
 * module's object reaches, but every hook it makes shares one class: its `enable` is refused on the class's
 * prototype, where it cannot be replaced (the original is then referenced nowhere).
 */
async function refuseAsyncHooks(): Promise<void> {
  const { createHook } = await import("node:async_hooks");
  const prototype = Object.getPrototypeOf(createHook({})) as Record<string, unknown>;
  Object.defineProperty(prototype, "enable", {
    value: () => refuseKnob("async_hooks.createHook(…).enable()"),
    writable: false,
    configurable: false,
  });
}

interface DenoCore {
  setPromiseHooks: (init?: unknown, before?: () => void, after?: unknown, resolve?: unknown) => void;
}

/**
 * Code an ended call left behind is stopped the moment it would run during another call. Timers, fetches
 * and sockets are cancelled when a call returns, but a chain through any other asynchronous API
 * (`crypto.subtle`, a `MessageChannel`, `Atomics.waitAsync`, a promise kept in module state that the next
 * call resolves) can only be stopped when it next runs, and a CPU watch or an idle check sees it only
 * after it ran. Every such continuation is a promise reaction (Deno delivers its I/O, messages and waits
 * as promise resolutions), and a reaction carries the context of the call that registered it. So a V8
 * "before" promise hook checks each reaction while a call runs: one of another call is not let run. The
 * worker tells the host thread, which reports the running call as not started (it runs again in another
 * process) and exits; meanwhile this thread blocks, so the late code never gets to run. A reaction costs
 * one context lookup more (no measurable change on 200,000 awaits).
 */
function guardLateCode(): void {
  core.setPromiseHooks(
    undefined,
    () => {
      if (scope.lateCodeRunning()) stopAsLate();
    },
    undefined,
    undefined,
  );
}

const blocked = new Int32Array(new SharedArrayBuffer(4));

/**
 * Tells the host thread that the running call must run elsewhere (it reports the call as not started,
 * `stale`, and exits), and blocks this thread until the process ends, so that no more code runs here.
 */
function stopAsLate(reason?: string): never {
  post(reason === undefined ? ["late"] : ["late", reason]);
  // Until the host thread ends the process; `wait` returns only if woken, and nothing else holds `blocked`.
  for (;;) wait(blocked, 0, 0);
}

/**
 * A `FinalizationRegistry`'s cleanup callback is run by V8 after a collection, whenever that happens: a
 * target registered by one call and collected during the next ran the callback, with the earlier call's
 * held value, in the next call (it is not a promise reaction, so {@linkcode guardLateCode} does not see
 * it). Each registration now carries the phase that made it, and its callback runs only while that phase
 * does; otherwise it is dropped, which the language allows (a cleanup callback may never run). The
 * `FinalizationRegistry` global becomes a stand-in that wraps the callback; the original constructor is not
 * reachable (its prototype's `constructor` is the stand-in) and `register` is replaced on the prototype,
 * which the realm's freeze then fixes. Installed before lockdown.
 */
function guardFinalizers(): void {
  type Registry = new (cleanup: (held: unknown) => void) => object;
  const Original = (globalThis as unknown as { FinalizationRegistry: Registry }).FinalizationRegistry;
  const prototype = Original.prototype as { register: (...args: unknown[]) => unknown };
  const register = prototype.register;
  const entries = new WeakSet<object>();
  const FinalizationRegistry = function (this: unknown, cleanup: unknown) {
    if (new.target === undefined) throw new TypeError("Constructor FinalizationRegistry requires 'new'");
    if (typeof cleanup !== "function") throw new TypeError("cleanup must be callable");
    const guarded = (entry: { phase: number; held: unknown }) => {
      if (entries.has(entry) && entry.phase !== 0 && entry.phase === scope.phase) cleanup(entry.held);
    };
    return Reflect.construct(Original, [guarded], new.target);
  };
  Object.defineProperty(prototype, "register", {
    value: function (this: object, target: unknown, held: unknown, token?: unknown) {
      if (target === held) {
        throw new TypeError("FinalizationRegistry.prototype.register: target and holdings must not be same");
      }
      const entry = { phase: scope.phase, held };
      entries.add(entry);
      return register.call(this, target, entry, token);
    },
    writable: true,
    configurable: true,
  });
  Object.defineProperty(FinalizationRegistry, "prototype", { value: prototype, writable: false });
  Object.defineProperty(prototype, "constructor", {
    value: FinalizationRegistry,
    writable: true,
    configurable: true,
  });
  Object.defineProperty(globalThis, "FinalizationRegistry", {
    value: FinalizationRegistry,
    writable: true,
    configurable: true,
    enumerable: false,
  });
}

/**
 * `queueMicrotask` queues its callback as a promise reaction, so that {@linkcode guardLateCode} and the
 * call scope see it like any other continuation: V8 runs a queued microtask without the promise hook, and a
 * chain of them an ended call left ran unseen after its reset (break attempt brk39). Installed before the
 * realm's freeze, which hardens it.
 */
function guardMicrotasks(): void {
  const report = reportError;
  const descriptor = Object.getOwnPropertyDescriptor(globalThis, "queueMicrotask");
  Object.defineProperty(globalThis, "queueMicrotask", {
    ...descriptor,
    value: scope.queueMicrotaskAsReaction((error) => report(error)),
  });
}

function guardUncaught(): void {
  // Once serving, a tool's stray timer or promise must not kill the worker: it goes to the logs. Before,
  // it is the module failing to load (a top-level throw), which the runtime must hear about.
  const report = (what: string, error: unknown) => {
    if (serving) emit("error", () => `${what}: ${format(error)}`);
    else post(["load_error", `${what} while loading the module: ${format(error)}`]);
  };
  // Registered before any tool code, so first: the tool's own listeners are not called. A listener a call
  // added to the global object would run in a later call's context and could log the earlier call's data
  // under the later call's ids (the global's listeners are not among the own keys reset after a call).
  // Frozen: the entries of the listener list are frozen (guardGlobalListeners), these functions too, so that
  // no call can hang anything on them for a later call (break attempt brk39).
  addEventListener(
    "unhandledrejection",
    Object.freeze((e: PromiseRejectionEvent) => {
      e.preventDefault();
      e.stopImmediatePropagation();
      report("Unhandled promise rejection", e.reason);
    }),
  );
  addEventListener(
    "error",
    Object.freeze((e: ErrorEvent) => {
      e.preventDefault();
      e.stopImmediatePropagation();
      report("Uncaught error", e.error ?? e.message);
    }),
  );
}

type ListenerEntry = { callback: unknown; options: object };
type EventTargetState = { listeners: Record<string, ListenerEntry[]> };

/**
 * The global object's listener list (Deno keeps it under an unnamed symbol of `globalThis`, in reach of
 * the tool) is put back after each call as it was when the module had loaded: a call emptied the lists
 * of the sandbox's `error` and `unhandledrejection` listeners, and the next call's stray rejection then
 * crashed the sandbox (red team 3 H3b). The entries are frozen, so their callbacks cannot be swapped.
 * A call can still empty them during its own run, which harms only that call (its stray error ends the
 * process: `tool_crashed`). Returns the function that takes the snapshot and gives the one that restores.
 */
function guardGlobalListeners(): () => () => void {
  const global = globalThis as unknown as Record<symbol, unknown>;
  const key = Object.getOwnPropertySymbols(global).find((symbol) => {
    const value = global[symbol] as Partial<EventTargetState> | undefined;
    return typeof value === "object" && value !== null && Array.isArray(value.listeners?.error);
  });
  if (key === undefined) throw new ErrorClass("the global object's listener list was not found");
  const state = global[key] as EventTargetState;
  const listeners = state.listeners;
  // Deno makes the list with no prototype. A call that gave it one had its entries found for every type
  // the list lacks: `dispatchEvent` in a later call, another execution's, ran the call's listener with that
  // call's event (break attempt brk41). Put back, or the reset throws and the process is retired.
  const { getPrototypeOf, setPrototypeOf } = Reflect;
  const prototypes: Array<[object, object | null]> = [[state, getPrototypeOf(state)], [
    listeners,
    getPrototypeOf(listeners),
  ]];
  return () => {
    const saved = Object.entries(listeners).map(([type, list]) => {
      for (const entry of list) Object.freeze(Object.freeze(entry).options);
      return [type, [...list]] as const;
    });
    return () => {
      if (global[key] !== state) global[key] = state;
      for (const [object, prototype] of prototypes) {
        if (getPrototypeOf(object) !== prototype && !setPrototypeOf(object, prototype)) {
          throw new ErrorClass("the global object's listener list could not be put back");
        }
      }
      state.listeners = listeners;
      for (const type of Object.keys(listeners)) delete listeners[type];
      for (const [type, list] of saved) listeners[type] = [...list];
    };
  };
}

/**
 * The Deno binary as a tool may see it (see {@linkcode guardCommandLine}): its path only with read access
 * to it, `"deno"` otherwise.
 */
const binary = (() => {
  const path = Deno.execPath();
  const readable = Deno.permissions.querySync({ name: "read", path }).state === "granted";
  return { path, readable, shown: readable ? path : "deno" };
})();

/**
 * Node's `process.argv0` is an accessor that cannot be redefined, whose setter does nothing and whose
 * getter returns the `argv0` that Node's layer takes from Deno's bootstrap arguments when it sets up
 * `process` (lazily, on first use): the Deno binary's path, as the runtime spawned it. Those arguments are
 * set to the neutral value before anything here sets `process` up.
 */
function neutralArgv0(): void {
  const internals = (Deno as unknown as Record<symbol, { __nodeBootstrapArgs?: { argv0?: string } }>)[
    (Deno as unknown as { internal: symbol }).internal
  ];
  const args = internals.__nodeBootstrapArgs;
  if (typeof args === "object" && args !== null) args.argv0 = binary.shown;
}
neutralArgv0();

// The built-ins the tool imports, loaded before anything here wraps Node's classes (node:http's set-up
// assigns over net.Server's methods, which installSockets replaces) and before the tool loads, so that
// their objects can be recorded once it has: Deno had them evaluated with a static import of the tool.
const nodeBuiltins: object[] = await Promise.all(limits.nodeBuiltins.map((name) => import(`node:${name}`)));
// Before the tool holds them: settings of the whole worker one call would set for every later one.
for (const builtin of nodeBuiltins) refuseModuleKnobs((builtin as { default?: unknown }).default, refuseKnob);
// node:perf_hooks' set-up adds to the global `performance`, which the realm's freeze fixes: loaded first
// (about a millisecond) so that node:http, node:https and node:http2, which load it lazily, can be
// reached by process.getBuiltinModule at run time.
if (limits.nodeProcess) await import("node:perf_hooks");
captureConsole();
captureStdio();
guardExitsAndEvaluators();
guardNodeProcess();
guardCommandLine();
guardUncaught();
const snapshotListeners = guardGlobalListeners();
guardLateCode();
guardFinalizers();
guardMicrotasks();
const resetProcessState = guardProcessState(Deno, performance);
const resetBufferPool = bufferPoolReset((globalThis as unknown as { Buffer: PooledBuffers }).Buffer);
guardWaitAsync(() => scope.current() === 0, (what) => post(["leftover", what]));
scope.install(globalThis as unknown as Parameters<CallScope["install"]>[0]);
scope.installLocks((navigator as unknown as { locks?: object }).locks);
scope.installObservers(
  (globalThis as unknown as { PerformanceObserver?: { prototype: object } }).PerformanceObserver,
);
refusePermissionRevoke();
refuseFileWatchers();
scope.installHostNet(
  Deno as unknown as Record<string, unknown>,
  globalThis as unknown as Record<string, unknown>,
);
// Node's sockets exist only where Node's layer does: tools that import `node:` built-ins or name `process`.
if (limits.nodeProcess) {
  await refuseAsyncHooks();
  scope.installSockets(await import("node:net") as unknown as NodeNet);
  scope.installDatagrams(await import("node:dgram") as unknown as NodeDgram);
  const events = await import("node:events");
  watchEmitters(events as unknown as Parameters<typeof watchEmitters>[0]);
  nodeState.useEmitterMethods(
    events.EventEmitter.prototype as unknown as Parameters<NodeStateGuard["useEmitterMethods"]>[0],
  );
}
await freezeRealm();

/**
 * Loads the tool module (`load`: the bootstrap's literal `import()` of it, which Deno loads with the
 * process's read access like a static import) and starts serving calls for it.
 */
export async function serveTool(load: () => Promise<Record<string, unknown>>): Promise<void> {
  let mod: Record<string, unknown>;
  try {
    mod = await scope.load(load);
  } catch (e) {
    post(["load_error", errorText(e)]);
    return;
  }
  const fn = (typeof mod.default === "function" ? mod.default : mod.run) as ToolFunction | undefined;
  if (typeof fn !== "function") {
    post(["load_error", "the module exports neither a default function nor a function named run"]);
    return;
  }
  // Timers the module's load started end with it; what it set on globalThis stays for every call. A server
  // it started shuts down in the background (one not shut down in time retires the worker).
  void scope.end();
  const restoreGlobals = snapshotGlobals();
  const restoreListeners = snapshotListeners();
  if (limits.nodeProcess) {
    nodeState.recordProcess((globalThis as unknown as { process: object }).process);
    for (const builtin of nodeBuiltins) nodeState.recordModule(builtin);
    for (const prototype of emittersBeforeServing) nodeState.recordPrototype(prototype);
    emittersBeforeServing.clear();
  }
  const reset = (): string | undefined => {
    try {
      // Node's first: removing a call's listeners runs its `removeListener` handlers, whose changes to
      // globals must be undone too.
      const node = limits.nodeProcess ? nodeState.restore() : undefined;
      const unrestored = restoreGlobals() ?? node;
      restoreListeners();
      resetProcessState();
      const pool = resetBufferPool();
      return unrestored ?? pool;
    } catch {
      // The call froze state the reset writes to (the global object's listener list): it threw, and the
      // result never went out, so the call waited for its time limit. What was thrown may be the tool's
      // (a `removeListener` handler), so it is not inspected.
      return "state whose reset threw";
    } finally {
      scope.settle();
    }
  };
  callPort.onmessage = (e: MessageEvent<WorkerCall>) => {
    void scope.within(e.data[0], () => handle(fn, e.data, reset));
  };
  serving = true;
  post(["ready"]);
}

/**
 * `reset` puts the globals, Node's objects, the global's listeners and the process state back and says
 * what it could not (see `snapshotGlobals`, `NodeStateGuard.restore`).
 */
async function handle(
  fn: ToolFunction,
  [id, json]: WorkerCall,
  reset: () => string | undefined,
): Promise<void> {
  // First, so the host knows this worker is not stuck in work a previous call left behind.
  acknowledge(acks, 0, id);
  if (scope.ranBetweenCalls()) beforeCall(id, reset);
  logBudget = limits.maxLogBytes;
  let message: WorkerMessage;
  try {
    const { input, ctx } = parse(json) as { input: unknown; ctx: Record<string, unknown> };
    const log = (level: LogLevel) => (...args: unknown[]) => {
      if (scope.isRunning(id)) emit(level, () => format(...args), id);
    };
    const context = {
      ...ctx,
      log: { debug: log("debug"), info: log("info"), warn: log("warn"), error: log("error") },
    };
    message = serialiseOutput(id, await scope.run(id, () => fn(input, context)));
  } catch (thrown) {
    message = ["error", id, stringify(describeThrownSafely(thrown))];
  }
  // Before the result goes out, so the next call cannot start while this one's work remains.
  const closing = scope.end();
  if (closing) await closing;
  // What the end aborted or closed settles in the call's reactions, which run in the next turns of the
  // event loop: let them run before the reset, rather than after it, where they would count as code of an
  // ended call between calls (and send a tool with Node's layer to a fresh process at its next call).
  if (scope.endedWork) await new Promise((resolve) => originalSetTimeout(resolve, 0));
  const unrestored = reset();
  // The call keeps its result; the host retires the worker once it is sent, so the next call runs in a
  // fresh process instead of one whose globals this call pinned (red team brk-sbx H5).
  if (unrestored !== undefined) post(["leftover", unrestored]);
  post(message);
  // A macrotask: it runs only if what the call left (a microtask or message loop) lets the loop turn.
  originalSetTimeout(() => acknowledge(acks, 1, id), 0);
}

/**
 * Runs before a call's code when the tool's code ran between calls, after the last call's reset: a reaction
 * or microtask chain an ended call left (`Promise.resolve().then(…)` chains, an I/O completion) could replace
 * a global or a Node object for this call, with a function holding its secret or capturing this call's
 * arguments (break attempt brk39: `atob` replaced after the reset reached the next execution). The reset runs
 * again first; a reset that fails sends the call to another process. A tool with Node's layer also tells the
 * runtime (`unsettled`): a `node:fs` open that code completed may have landed after the runtime last looked
 * at the process's descriptors, before this call, and only the runtime can see those (open_files.ts); it
 * looks again after the call, and a file found open then fails the call as `stale`, not its result.
 */
function beforeCall(id: number, reset: () => string | undefined): void {
  const unrestored = reset();
  if (unrestored !== undefined) stopAsLate(`code of an ended call ran between calls and left ${unrestored}`);
  if (limits.nodeProcess) post(["unsettled", id]);
}

function serialiseOutput(id: number, output: unknown): WorkerMessage {
  let text: string | undefined;
  try {
    // A tool that returns nothing succeeded with no output.
    text = encodeOutput(output === undefined ? null : output, limits.maxOutputBytes);
  } catch (e) {
    if (e instanceof OutputTooLarge) {
      return failed(id, "output_too_large", e.message);
    }
    return failed(id, "output_invalid", `the output is not JSON-serialisable: ${errorText(e)}`);
  }
  if (text === undefined) {
    return failed(id, "output_invalid", `the output is not JSON-serialisable: a ${typeof output}`);
  }
  // A UTF-8 encoding is at least as long as the UTF-16 length; the host checks the exact byte count.
  if (text.length > limits.maxOutputBytes) {
    return failed(id, "output_too_large", "the output is too large", text.length);
  }
  return ["result", id, text];
}

function failed(id: number, kind: SandboxError["kind"], message: string, bytes?: number): WorkerMessage {
  const error: SandboxError = { kind, name: "TypeError", message, ...(bytes === undefined ? {} : { bytes }) };
  return ["error", id, stringify(error)];
}

/**
 * A thrown value can trap every inspection (a Proxy, a throwing `cause` getter): describing it must not
 * throw, or no answer goes out and the call waits for its time limit instead of failing `tool_threw`.
 */
function describeThrownSafely(thrown: unknown): SandboxError {
  try {
    return describeThrown(thrown);
  } catch {
    return {
      kind: "threw",
      name: "unknown",
      message: "the tool threw a value that cannot be inspected",
      nonError: true,
    };
  }
}

function describeThrown(thrown: unknown, depth = 0): SandboxError {
  if (!(thrown instanceof ErrorClass)) {
    return {
      kind: "threw",
      name: typeof thrown,
      message: cap(format(thrown)),
      nonError: true,
      thrown: jsonOrUndefined(thrown),
    };
  }
  const cause = thrown.cause !== undefined && depth < 4 ? describeThrown(thrown.cause, depth + 1) : undefined;
  return {
    kind: "threw",
    // Every string of every level is capped: a 4 MB `name` went out whole and the failure overflowed the bus.
    name: cap(String(thrown.name), NAME_CAP),
    message: cap(String(thrown.message)),
    stack: thrown.stack === undefined ? undefined : cap(String(thrown.stack)),
    permission: isPermissionError(thrown) || cause?.permission === true,
    cause,
  };
}

function isPermissionError(e: Error): boolean {
  return e instanceof denoErrors.NotCapable || e instanceof denoErrors.PermissionDenied ||
    /^Requires \w+ access/.test(String(e.message));
}

function jsonOrUndefined(value: unknown): unknown {
  try {
    const text = stringify(value);
    return text !== undefined && text.length <= TEXT_CAP ? parse(text) : undefined;
  } catch {
    return undefined;
  }
}

function errorText(e: unknown): string {
  return e instanceof ErrorClass ? e.message : String(e);
}

function cap(text: string, limit = TEXT_CAP): string {
  return text.length > limit ? `${text.slice(0, limit)}…` : text;
}
