/**
 * Entry point of a sandbox process (`deno run … worker_host.ts <config>`): the host thread.
 *
 * It runs no tool code. It starts one worker that imports the tool with exactly the tool's permissions,
 * relays calls from stdin to the worker and frames what the worker posts back to stdout, enforcing the
 * output and log limits itself (the tool can post messages too). When stdin closes it exits at once, even
 * if the tool is stuck in a loop: the runtime died or closed the pool, and no sandbox may outlive it.
 *
 * It also keeps calls apart: log lines of any call but the running one are dropped, and the sandbox exits
 * with a `stale` frame when its worker is not fit for another call — it did not take a call within
 * {@linkcode LIVENESS_MS} (still busy with work an earlier call left behind), or it reported such work
 * (a tracked API, or exit, called by code of an ended call).
 *
 * @module
 */
import {
  CALL_KEY_BYTES,
  CallCipher,
  encodeFrame,
  FrameReader,
  FromSandbox,
  LOG_FRAME,
  LOG_LINE_COST,
  type LogLevel,
  type SandboxConfig,
  type SandboxError,
  TOKEN_BYTES,
  ToSandbox,
  type WorkerCall,
} from "./protocol.ts";
import { installKernelLimits } from "./kernel_limits.ts";

const MAX_CALL_BYTES = 1024 * 1024 * 1024;
/**
 * How long an idle worker may take to acknowledge a call. An idle worker answers in microseconds; this
 * only has to outlast a GC pause or a busy machine, since a miss costs a fresh process, not a failure.
 */
const LIVENESS_MS = 500;

const config = JSON.parse(Deno.args[0]) as SandboxConfig;
const encoder = new TextEncoder();
const decoder = new TextDecoder();
const token = crypto.getRandomValues(new Uint8Array(TOKEN_BYTES));

let ready = false;
let currentCall = 0;
let logBytesLeft = config.worker.maxLogBytes;
/** When the running call's frame went to the worker, and how long the worker has to take it. */
let callSentAt = 0;
let patienceMs = LIVENESS_MS;
/** The last call that returned, and when: its worker must say its event loop turned (see `checkWorker`). */
let lastCall = 0;
let returnedAt = 0;
/** Why the worker must not take another call, once the running one has ended. */
let retireAfterCall: string | undefined;

function writeAll(bytes: Uint8Array): void {
  let offset = 0;
  while (offset < bytes.length) offset += Deno.stdout.writeSync(bytes.subarray(offset));
}

function send(type: number, id: number, payload: string | Uint8Array): void {
  writeAll(encodeFrame(token, type, id, typeof payload === "string" ? encoder.encode(payload) : payload));
}

function sendError(type: number, id: number, error: SandboxError): void {
  send(type, id, JSON.stringify(error));
}

// The token goes out first, before the worker exists, so no tool code can write ahead of it.
writeAll(token);

/** Reads the call key, the runtime's first bytes on stdin, before the worker (and any tool code) exists. */
function readCallKey(): Uint8Array {
  const key = new Uint8Array(CALL_KEY_BYTES);
  for (let got = 0; got < key.length;) {
    const n = Deno.stdin.readSync(key.subarray(got));
    if (n === null) Deno.exit(0);
    got += n;
  }
  return key;
}
const cipher = new CallCipher(readCallKey(), "decrypt");

installLimits();
const worker = startWorker();

/**
 * Before any tool code exists: what the kernel refuses the tool (set-ID modes, unix sockets, files over a
 * size: kernel_limits.ts). Without them the tool does not run; the failure is the load's.
 */
function installLimits(): void {
  if (config.kernelLimits === undefined) return;
  try {
    installKernelLimits(config.kernelLimits);
  } catch (e) {
    const error = e instanceof Error ? e : new Error(String(e));
    sendError(FromSandbox.loadError, 0, { kind: "threw", name: error.name, message: error.message });
    Deno.exit(0);
  }
}

/**
 * Deno refuses a worker a permission its process lacks: a `net` grant naming an address on the deny list
 * (net_deny.ts; `--deny-net` wins over `--allow-net`). That is the tool's grant being refused, reported as
 * a permission failure of the load; before, the process died with Deno's stack (`tool_crashed`, retried).
 */
function startWorker(): Worker {
  try {
    return new Worker(bootstrapUrl(config.toolUrl), {
      type: "module",
      name: JSON.stringify(config.worker),
      deno: { permissions: config.workerPermissions },
    });
  } catch (e) {
    const error = e instanceof Error ? e : new Error(String(e));
    sendError(FromSandbox.loadError, 0, {
      kind: "threw",
      name: error.name,
      message: `the tool's permissions cannot be granted in this sandbox: ${error.message}`,
      permission: error instanceof Deno.errors.NotCapable,
    });
    Deno.exit(0);
  }
}

/**
 * The worker's module: SES's lockdown bundle (it only defines globals), then the sandbox setup, then the
 * tool, so the realm is frozen before any tool code runs. The tool is imported by a literal `import()`
 * (loaded with the process's read access, like a static import) so that its evaluation runs in a context
 * of its own (call_scope.ts `load`).
 */
function bootstrapUrl(toolUrl: string): string {
  const source = `import ${JSON.stringify(config.lockdownUrl)};\n` +
    `import { serveTool } from ${JSON.stringify(config.workerUrl)};\n` +
    `serveTool(() => import(${JSON.stringify(toolUrl)}));\n`;
  return `data:application/javascript,${encodeURIComponent(source)}`;
}

/**
 * Calls go to the worker on a port of their own, handed over before any tool code runs, never as messages
 * to the worker's global object: the global's listener list is reachable by the tool (an unnamed symbol
 * of `globalThis`), and a listener planted there heard every later call's input (red team 3 H1).
 */
const calls = new MessageChannel();
/**
 * The worker's acknowledgements, in memory it shares with this thread only (handed over with the port):
 * `[0]` the last call it took, `[1]` the last call after which its event loop turned. They are read only
 * when a check is due ({@linkcode checkWorker}), so they cost no message and no timer per call: as messages
 * they were two of the four that crossed between the threads per call.
 */
const acks = new Uint32Array(new SharedArrayBuffer(8));
worker.postMessage(["calls", acks.buffer], [calls.port2]);

worker.onmessage = (e: MessageEvent<unknown>) => relay(e.data);

worker.onerror = (e: ErrorEvent) => {
  e.preventDefault();
  if (!ready) {
    sendError(FromSandbox.loadError, 0, { kind: "module_invalid", name: "Error", message: e.message });
  } else {
    sendError(FromSandbox.exit, currentCall, {
      kind: "exit",
      name: "Error",
      message: e.message,
      exitCode: 70,
    });
  }
  Deno.exit(70);
};

/** Forwards one worker message after checking its shape: the tool can post arbitrary values. */
function relay(m: unknown): void {
  if (!Array.isArray(m)) return;
  const [kind, a, b, c] = m as unknown[];
  if (kind === "ready" && !ready) {
    ready = true;
    send(FromSandbox.ready, 0, "");
  } else if (kind === "load_error" && !ready && typeof a === "string") {
    sendError(FromSandbox.loadError, 0, { kind: "module_invalid", name: "TypeError", message: a });
    Deno.exit(0);
  } else if (kind === "result" && a === currentCall && a !== 0 && typeof b === "string") {
    sendResult(a, b);
    afterCall(a);
  } else if (kind === "error" && a === currentCall && a !== 0 && typeof b === "string") {
    currentCall = 0;
    send(FromSandbox.error, a, b);
    afterCall(a);
  } else if (
    kind === "log" && a === currentCall && a !== 0 && typeof b === "string" && Object.hasOwn(LOG_FRAME, b)
  ) {
    sendLog(a, b as LogLevel, typeof c === "string" ? c : String(c));
  } else if (kind === "leftover" && ready) {
    retireAfterCall = `work left by an ended call used ${typeof a === "string" ? a.slice(0, 100) : "an API"}`;
    if (currentCall === 0) afterCall(0);
  } else if (kind === "unsettled" && ready && a === currentCall && currentCall !== 0) {
    send(FromSandbox.unsettled, currentCall, "");
  } else if (kind === "late" && ready && currentCall !== 0) {
    // The worker stopped code of an ended call from running during this one: the call is not the tool's
    // failure and runs again in another process.
    retire(
      currentCall,
      typeof a === "string"
        ? a.slice(0, 200)
        : "code left by an ended call was about to run during this call",
    );
  } else if (kind === "exit" && ready && a !== currentCall && lastCall !== 0) {
    // Work an ended call left behind called exit: not the running call's doing, which runs again elsewhere.
    retire(currentCall, "work left by an ended call called exit");
  } else if (kind === "exit" && typeof a === "number") {
    // The running call's exit. In a process's first call no call has ended to leave work behind, so an exit
    // by other code (a reaction the module's load left, which that call set off) is the call's too: blamed
    // on an ended call, the call ran again in a fresh process, whose load did the same, three runs in all,
    // each with the whole time limit (outside break attempt brk35).
    const exitCode = typeof b === "number" ? b : 0;
    sendError(FromSandbox.exit, currentCall !== 0 ? currentCall : a, {
      kind: "exit",
      name: "Exit",
      message: `the tool called exit(${exitCode})`,
      exitCode,
    });
    Deno.exit(0);
  }
}

/**
 * Retires the sandbox if its worker reported left-over work; otherwise it waits for the next call, and
 * checks that the worker's event loop turns once the call `id` returned: a loop of microtasks or messages
 * the call left behind would otherwise burn a CPU while the sandbox sits idle in the pool, until a next
 * call's liveness check (which may never come).
 */
function afterCall(id: number): void {
  if (retireAfterCall !== undefined) retire(0, retireAfterCall);
  if (id === 0) return;
  lastCall = id;
  returnedAt = performance.now();
  armWatchdog(returnedAt + LIVENESS_MS);
}

/** The number of the timer set for the next check, 0 when none is; `timers` counts the timers set. */
let watchdog = 0;
let timers = 0;
let watchdogDue = Infinity;

/**
 * One timer for both checks, set only when none is due sooner: a sandbox serving a call a millisecond sets
 * it about once per {@linkcode LIVENESS_MS}, not twice per call.
 *
 * The timer is an `AbortSignal.timeout`, not `setTimeout`: Deno 2.9's global `setTimeout` is Node's
 * (`node:timers`), and its first use in a thread loads that part of Node's layer, which this thread uses
 * for nothing else: ~15 ms of CPU at the first call of every fresh sandbox (docs/performance.md, "Cold
 * sandbox start"). A signal's timer cannot be cleared: one that a sooner timer replaced still fires, and
 * does nothing.
 */
function armWatchdog(due: number): void {
  if (watchdog !== 0 && watchdogDue <= due) return;
  const timer = ++timers;
  watchdog = timer;
  watchdogDue = due;
  // Whole milliseconds (the signal takes no fraction), rounded up: a check that finds itself early sets
  // the timer again anyway.
  AbortSignal.timeout(Math.max(0, Math.ceil(due - performance.now()))).onabort = () => {
    if (watchdog === timer) checkWorker();
  };
}

/**
 * The liveness check (the worker took the running call within its patience) and the idle check (the
 * worker's event loop turned within {@linkcode LIVENESS_MS} of the last call's return, while no call runs),
 * from the worker's acknowledgements. A check not yet due sets the timer again for when it is.
 */
function checkWorker(): void {
  watchdog = 0;
  watchdogDue = Infinity;
  const now = performance.now();
  if (currentCall !== 0) {
    if (Atomics.load(acks, 0) === currentCall) return;
    if (now >= callSentAt + patienceMs) {
      retire(currentCall, `the worker did not take the call within ${patienceMs} ms: it is still busy`);
    }
    return armWatchdog(callSentAt + patienceMs);
  }
  if (lastCall === 0 || Atomics.load(acks, 1) === lastCall) return;
  if (now >= returnedAt + LIVENESS_MS) {
    retire(0, `the worker was still busy ${LIVENESS_MS} ms after its call returned`);
  }
  armWatchdog(returnedAt + LIVENESS_MS);
}

/** Tells the runtime the worker is unfit for calls (`id`: the call it failed to take, or 0) and exits. */
function retire(id: number, reason: string): never {
  send(FromSandbox.stale, id, reason);
  Deno.exit(0);
}

function sendResult(id: number, json: string): void {
  currentCall = 0;
  const bytes = encoder.encode(json);
  if (bytes.length > config.worker.maxOutputBytes) {
    sendError(FromSandbox.error, id, {
      kind: "output_too_large",
      name: "TypeError",
      message: "the output is too large",
      bytes: bytes.length,
    });
    return;
  }
  send(FromSandbox.result, id, bytes);
}

/** A line costs its bytes plus {@linkcode LOG_LINE_COST}, as in the worker: a short line is not nearly free. */
function sendLog(id: number, level: LogLevel, text: string): void {
  if (logBytesLeft <= 0) return;
  let bytes = encoder.encode(text);
  if (bytes.length + LOG_LINE_COST >= logBytesLeft) {
    bytes = bytes.subarray(0, Math.max(0, logBytesLeft - LOG_LINE_COST));
    logBytesLeft = 0;
    if (bytes.length > 0) send(LOG_FRAME[level], id, bytes);
    send(
      LOG_FRAME.warn,
      id,
      `log output over ${config.worker.maxLogBytes} bytes for this call: the rest is dropped`,
    );
    return;
  }
  logBytesLeft -= bytes.length + LOG_LINE_COST;
  send(LOG_FRAME[level], id, bytes);
}

/**
 * Small frames open at once; a large one opens through Web Crypto (a promise), and the frames after it wait
 * for it: each frame's nonce is its number on the channel.
 */
const frames = new FrameReader(new Uint8Array(0), MAX_CALL_BYTES, {
  frame(type, id, payload) {
    if ((type !== ToSandbox.call && type !== ToSandbox.probe) || id === 0) return;
    const missed = () => retire(id, "a call frame did not decrypt: a frame was read by something else");
    let opened: Uint8Array | Promise<Uint8Array>;
    try {
      opened = cipher.open(id, payload);
    } catch {
      return missed();
    }
    if (opening === undefined && opened instanceof Uint8Array) return deliver(type, id, opened);
    const next: Promise<void> = (opening ?? Promise.resolve())
      .then(() => opened)
      .then((plain) => deliver(type, id, plain), missed)
      .finally(() => {
        if (opening === next) opening = undefined;
      });
    opening = next;
  },
  stray() {},
});
let opening: Promise<void> | undefined;

function deliver(type: number, id: number, plain: Uint8Array): void {
  if (type === ToSandbox.call) startCall(id, plain);
  else send(FromSandbox.received, id, "");
}

function startCall(id: number, payload: Uint8Array): void {
  // The next call's liveness check covers what the idle check was waiting for.
  currentCall = id;
  logBytesLeft = config.worker.maxLogBytes;
  const call: WorkerCall = [id, decoder.decode(payload)];
  // Copying the call into the worker takes time too: 100 ms more per MB of input.
  patienceMs = LIVENESS_MS + Math.ceil(payload.length / 10_000);
  callSentAt = performance.now();
  armWatchdog(callSentAt + patienceMs);
  calls.port1.postMessage(call);
}

// Plain reads into one buffer (the reader copies what it keeps): a ReadableStream costs a chunk, a pull and
// its promises per read.
const chunk = new Uint8Array(64 * 1024);
for (let n = await Deno.stdin.read(chunk); n !== null; n = await Deno.stdin.read(chunk)) {
  frames.push(chunk.subarray(0, n));
}
Deno.exit(0);
