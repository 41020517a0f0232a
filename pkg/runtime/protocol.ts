/**
 * The wire between the runtime and a sandbox process, and between the sandbox's host thread and the worker
 * that runs the tool.
 *
 * Runtime → sandbox (stdin): `[u32 length][u8 type][u32 call id][payload]`. Only the host thread reads
 * stdin; the tool's worker has `Deno.stdin` replaced, so it cannot steal bytes by accident.
 *
 * Sandbox → runtime (stdout): `[16-byte token][u32 length][u8 type][u32 call id][payload]`. A tool can
 * still write raw bytes to file descriptor 1 (`node:fs.writeSync(1, …)`), so each frame starts with a
 * random token the sandbox draws at start-up and sends as its very first bytes, before any tool code runs.
 * The reader takes everything that is not a frame as stray output and resynchronises on the next token.
 * The token lives in the host thread's memory, which the tool's worker cannot reach.
 *
 * Payloads are UTF-8: the call input/output as JSON text, a log line as plain text, an error as JSON.
 *
 * @module
 */
import { ChaCha20Poly1305, KEY_BYTES, NONCE_BYTES, TAG_BYTES } from "./frame_cipher.ts";
import type { KernelLimits } from "./kernel_limits.ts";

export const TOKEN_BYTES = 16;
/**
 * The keys the runtime sends ahead of everything on a sandbox's stdin, for its call frames (below): 32
 * bytes for ChaCha20-Poly1305 (small frames), 32 for AES-GCM (large ones).
 */
export const CALL_KEY_BYTES = 64;
/**
 * Frames whose payload is at most this many bytes are sealed with ChaCha20-Poly1305 in JavaScript, on the
 * caller's thread (a 200-byte frame: ~5 µs of CPU per side); larger ones with Web Crypto's AES-GCM, whose
 * fixed cost (~20 µs per frame: an asynchronous op on another thread) is then outweighed by AES-NI (a 64 KiB
 * frame: ~170 µs against ~410 µs in JavaScript).
 */
export const SMALL_FRAME_BYTES = 4096;

/**
 * Call payloads are sealed (authenticated encryption) under keys per process: the call channel is the
 * process's stdin, and `node:fs` in the worker can read fd 0 by number, so a pending read there takes whole
 * call frames (red team 3 H2). A frame read that way is ciphertext; and since the nonce is the frame's
 * number on the channel, the host cannot open anything after a frame it missed and retires the process. The
 * call id is the associated data: a frame opens only for its own call. Each frame has its own nonce whichever
 * cipher seals it, and the two ciphers have independent keys.
 */
export class CallCipher {
  #sequence = 0;
  readonly #small: ChaCha20Poly1305;
  readonly #large: Promise<CryptoKey>;

  /** `raw`: {@linkcode CALL_KEY_BYTES} random bytes, the same on both ends. */
  constructor(raw: Uint8Array, usage: "encrypt" | "decrypt") {
    if (raw.length !== CALL_KEY_BYTES) throw new RangeError(`a call key is ${CALL_KEY_BYTES} bytes`);
    this.#small = new ChaCha20Poly1305(raw.subarray(0, KEY_BYTES));
    this.#large = crypto.subtle.importKey("raw", raw.slice(KEY_BYTES), "AES-GCM", false, [usage]);
  }

  /** The next frame's nonce and the data its payload is bound to (the frame's call id). */
  #params(id: number): { nonce: Uint8Array; aad: Uint8Array } {
    const nonce = new Uint8Array(NONCE_BYTES);
    new DataView(nonce.buffer).setFloat64(4, this.#sequence++);
    const aad = new Uint8Array(4);
    new DataView(aad.buffer).setUint32(0, id);
    return { nonce, aad };
  }

  /** Sealed at once when small (a value), else by Web Crypto (a promise); either way this frame's nonce is taken now. */
  seal(id: number, payload: Uint8Array): Uint8Array | Promise<Uint8Array> {
    const { nonce, aad } = this.#params(id);
    if (payload.length <= SMALL_FRAME_BYTES) return this.#small.seal(nonce, aad, payload);
    const params = { name: "AES-GCM", iv: nonce, additionalData: aad };
    const copy = new Uint8Array(payload);
    return this.#large.then((key) => crypto.subtle.encrypt(params, key, copy)).then((b) => new Uint8Array(b));
  }

  /**
   * Opens the next frame, at once when small, else by Web Crypto (a promise).
   *
   * @throws {FrameAuthError} (or rejects with a DOMException) when `sealed` is not the next frame the
   * runtime sealed for call `id`.
   */
  open(id: number, sealed: Uint8Array): Uint8Array | Promise<Uint8Array> {
    const { nonce, aad } = this.#params(id);
    if (sealed.length <= SMALL_FRAME_BYTES + TAG_BYTES) return this.#small.open(nonce, aad, sealed);
    const params = { name: "AES-GCM", iv: nonce, additionalData: aad };
    // Copied now: the caller's buffer may be reused for the frames that follow.
    const copy = new Uint8Array(sealed);
    return this.#large.then((key) => crypto.subtle.decrypt(params, key, copy)).then((b) => new Uint8Array(b));
  }
}
const HEADER_BYTES = 9;
const INITIAL_BUFFER = 64 * 1024;

/**
 * Frame types from the runtime to the sandbox. `probe` asks the host thread, once a call has run for a
 * while, whether it received the call's frame: sealed like a call frame, with the next nonce, so a host
 * that missed the call frame cannot open it (and retires), and answered with `received`.
 */
export const ToSandbox = { call: 1, probe: 2 } as const;

/** Frame types from the sandbox to the runtime. */
export const FromSandbox = {
  ready: 1,
  loadError: 2,
  result: 3,
  error: 4,
  exit: 5,
  /**
   * The worker was left busy or holding work by an earlier call (it did not take a call at once, or code
   * of an ended call used a tracked API): the sandbox exits, and a call in flight is run again elsewhere.
   */
  stale: 6,
  /** Answers a `probe`: the host holds the call's frame (the call runs, or its answer is on its way). */
  received: 7,
  /**
   * Sent before the call's code runs: code of an ended call ran between calls, after the runtime may have
   * last looked at the process's files. A regular file found open after this call then fails it as `stale`
   * (it runs again elsewhere) instead of letting it keep its result (tool_runner.ts).
   */
  unsettled: 8,
  logDebug: 10,
  logInfo: 11,
  logWarn: 12,
  logError: 13,
} as const;

export type LogLevel = "debug" | "info" | "warn" | "error";
export const LOG_FRAME: Readonly<Record<LogLevel, number>> = {
  debug: FromSandbox.logDebug,
  info: FromSandbox.logInfo,
  warn: FromSandbox.logWarn,
  error: FromSandbox.logError,
};
export const LOG_LEVEL_OF_FRAME: Readonly<Record<number, LogLevel>> = {
  [FromSandbox.logDebug]: "debug",
  [FromSandbox.logInfo]: "info",
  [FromSandbox.logWarn]: "warn",
  [FromSandbox.logError]: "error",
};

/** The ids a tool receives in `ctx`, next to `ctx.log`. */
export interface CallContext {
  workflowId: string;
  workflowExecId: string;
  taskId: string;
  taskExecId: string;
  attempt: number;
}

/** Configuration of a sandbox process, passed as its single argument. Nothing in it is secret. */
export interface SandboxConfig {
  toolUrl: string;
  /** The module the tool's worker imports before the tool (tool_worker.ts, or its bundle); it exports `serveTool`. */
  workerUrl: string;
  /** SES's `lockdown` bundle, imported by the worker before anything else (see global_guard.ts). */
  lockdownUrl: string;
  workerPermissions: Deno.PermissionOptionsObject;
  worker: WorkerSettings;
  /** What the host has the kernel refuse the tool before it loads (kernel_limits.ts); absent: nothing. */
  kernelLimits?: KernelLimits;
}

/** What the tool's worker needs before the tool loads; passed as the worker's name. */
/**
 * What one log line costs a call's log budget besides its bytes. Each line becomes a record of its own
 * downstream (the runtime's console, a publish on the logs subject, a message kept in the LOGS stream for
 * days, ~350 bytes each): charged a byte, 256 KiB let 131,072 one-character lines through, whose records
 * kept the runtime busy for minutes (other calls 6-18 s instead of 0.5 s) and left 78 MB in the stream
 * (red team 7, R5). At 256, the default budget passes about a thousand short lines per call.
 */
export const LOG_LINE_COST = 256;

export interface WorkerSettings {
  maxOutputBytes: number;
  maxLogBytes: number;
  /** {@linkcode LOG_LINE_COST}, passed so that the worker's module needs none of this one's code. */
  logLineCost: number;
  /** Set Node's `process` up before the realm is frozen (import_policy.ts `needsNodeProcess`). */
  nodeProcess: boolean;
  /** The `node:` built-ins the tool's graph imports (import_policy.ts), without the prefix. */
  nodeBuiltins: readonly string[];
  /**
   * The `net` grant lets the tool connect, never listen or bind a port (kernel_limits.ts `connectsOnly`):
   * the worker refuses a UDP `bind` to a port, which the kernel filter cannot see.
   */
  connectsOnly: boolean;
}

/** How a call or a module load failed inside the sandbox, as facts; the runtime names the failure. */
export interface SandboxError {
  kind: "threw" | "output_invalid" | "output_too_large" | "module_invalid" | "exit";
  name: string;
  message: string;
  stack?: string;
  /** The tool threw something that is not an Error (its JSON form, when it has one). */
  nonError?: boolean;
  thrown?: unknown;
  /** A NotCapable/PermissionDenied error was in the thrown error's cause chain. */
  permission?: boolean;
  cause?: SandboxError;
  bytes?: number;
  exitCode?: number;
}

/** Messages from the tool's worker to the host thread. The host checks their shape: the tool can post too. */
export type WorkerMessage =
  | ["ready"]
  | ["load_error", string]
  | ["result", number, string]
  | ["error", number, string]
  | ["log", number, LogLevel, string]
  | ["exit", number, number]
  /** Code of an ended call tried a tracked API (named): the worker holds left-over work. */
  | ["leftover", string]
  /** Code of an ended call was about to run during the running call; the worker is blocked for good. */
  | ["late"]
  | ["late", string]
  /** The call `id` starts after code of an ended call ran between calls (see `FromSandbox.unsettled`). */
  | ["unsettled", number];

/** A call from the host thread to the worker: `[call id, JSON of { input, ctx }]`, parsed only there. */
export type WorkerCall = [number, string];

/** Encodes one frame; pass an empty token for the runtime → sandbox direction. */
export function encodeFrame(token: Uint8Array, type: number, id: number, payload: Uint8Array): Uint8Array {
  const frame = new Uint8Array(token.length + HEADER_BYTES + payload.length);
  frame.set(token, 0);
  const view = new DataView(frame.buffer, token.length, HEADER_BYTES);
  view.setUint32(0, payload.length);
  view.setUint8(4, type);
  view.setUint32(5, id);
  frame.set(payload, token.length + HEADER_BYTES);
  return frame;
}

/** Thrown by {@linkcode FrameReader} when the stream cannot be a valid frame sequence any more. */
export class ProtocolError extends Error {
  override readonly name = "ProtocolError";
}

/** Receives what a {@linkcode FrameReader} decodes. */
export interface FrameSink {
  frame(type: number, id: number, payload: Uint8Array): void;
  /** Bytes outside any frame (only with a token): output the tool wrote to the descriptor directly. */
  stray(bytes: Uint8Array): void;
}

/**
 * Decodes frames from a byte stream delivered in arbitrary chunks.
 *
 * @example
 * ```ts
 * import { encodeFrame, FrameReader } from "./protocol.ts";
 * const token = new Uint8Array(16).fill(7);
 * const got: number[] = [];
 * const reader = new FrameReader(token, 1024, { frame: (type) => got.push(type), stray: () => {} });
 * reader.push(encodeFrame(token, 3, 1, new Uint8Array([1, 2])));
 * console.assert(got[0] === 3);
 * ```
 */
export class FrameReader {
  #buf = new Uint8Array(INITIAL_BUFFER);
  #start = 0;
  #end = 0;

  constructor(
    private readonly token: Uint8Array,
    private readonly maxPayload: number,
    private readonly sink: FrameSink,
  ) {}

  /** @throws {ProtocolError} when a frame announces a payload over the limit. */
  push(chunk: Uint8Array): void {
    this.#append(chunk);
    while (this.#next()) { /* one frame or stray run per turn */ }
    if (this.#start === this.#end) {
      this.#start = this.#end = 0;
      // One large output must not pin megabytes for the life of the process.
      if (this.#buf.length > INITIAL_BUFFER) this.#buf = new Uint8Array(INITIAL_BUFFER);
    }
  }

  #append(chunk: Uint8Array): void {
    if (this.#end + chunk.length > this.#buf.length) {
      const used = this.#end - this.#start;
      if (used + chunk.length <= this.#buf.length) {
        this.#buf.copyWithin(0, this.#start, this.#end);
      } else {
        const next = new Uint8Array((used + chunk.length) * 2);
        next.set(this.#buf.subarray(this.#start, this.#end));
        this.#buf = next;
      }
      this.#start = 0;
      this.#end = used;
    }
    this.#buf.set(chunk, this.#end);
    this.#end += chunk.length;
  }

  /** Consumes one frame or one run of stray bytes; false when more input is needed. */
  #next(): boolean {
    const t = this.token.length;
    if (t > 0) {
      const at = this.#findToken();
      if (at > this.#start) {
        this.sink.stray(this.#buf.slice(this.#start, at));
        this.#start = at;
      }
      if (at === -1 || this.#end - this.#start < t) return false;
    }
    if (this.#end - this.#start < t + HEADER_BYTES) return false;
    const view = new DataView(this.#buf.buffer, this.#start + t, HEADER_BYTES);
    const length = view.getUint32(0);
    if (length > this.maxPayload) {
      throw new ProtocolError(`frame of ${length} bytes exceeds the limit of ${this.maxPayload}`);
    }
    const total = t + HEADER_BYTES + length;
    if (this.#end - this.#start < total) return false;
    const payloadAt = this.#start + t + HEADER_BYTES;
    const type = view.getUint8(4);
    const id = view.getUint32(5);
    this.#start += total;
    this.sink.frame(type, id, this.#buf.slice(payloadAt, payloadAt + length));
    return true;
  }

  /**
   * Index of the next token, or of a token prefix cut off at the end of the buffer (kept until more bytes
   * arrive). When there is none, everything but a possible prefix is stray: returns the first kept index,
   * or -1 when the whole buffer was handed out as stray.
   */
  #findToken(): number {
    const token = this.token;
    let i = this.#start;
    while (i < this.#end) {
      i = this.#buf.indexOf(token[0], i);
      if (i === -1 || i >= this.#end) break;
      let j = 1;
      while (j < token.length && i + j < this.#end && this.#buf[i + j] === token[j]) j++;
      if (j === token.length || i + j === this.#end) return i;
      i++;
    }
    if (this.#end > this.#start) {
      this.sink.stray(this.#buf.slice(this.#start, this.#end));
      this.#start = this.#end;
    }
    return -1;
  }
}
