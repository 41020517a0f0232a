/**
 * The SDK transport for an MCP server: streamable HTTP or SSE for a `url`, stdio for a process the runtime
 * starts. A `script` server is a Deno process with the Deno permissions its config grants and nothing else,
 * checked like a tool's sandbox process (red team 4 F4: it got none of those checks): its `read`/`write` grants
 * go through grant_paths.ts (no project's `.env`, `compozy.yaml` or `.compozy/`, no symlink out of a granted
 * folder, a `true` grant gets them as `--deny-read`/`--deny-write`, its own module never writable); no
 * `deno.json` or lock file is honoured, no `http(s):` module is fetched, strings are never compiled to code,
 * and the stack's NATS and API ports are denied whatever its `net` grant. It may import `npm:` packages (the
 * MCP SDK is one): they run with the same permissions, and Deno's loader fetches them at start with the
 * runtime user's registry settings and cache, outside any grant (the operator's trust: docs/runtime-sandbox.md,
 * "Known limits"). A `command` server is any program and runs with the
 * runtime's own rights, the one thing the runtime cannot confine.
 *
 * @module
 */

import { dirname, resolve } from "node:path";
import { SSEClientTransport, type SSEClientTransportOptions } from "@modelcontextprotocol/sdk/client/sse.js";
import { getDefaultEnvironment, StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import {
  StreamableHTTPClientTransport,
  type StreamableHTTPClientTransportOptions,
} from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import type { Transport, TransportSendOptions } from "@modelcontextprotocol/sdk/shared/transport.js";
import type { JSONRPCMessage } from "@modelcontextprotocol/sdk/types.js";
import type { ChildProcess } from "node:child_process";
import { denoExecutable } from "../deno_executable.ts";
import { neverGrantedFor, projectRoots, resolveGrants, rootsProtectedPaths } from "../grant_paths.ts";
import { checkScriptModule, SCRIPT_REFUSED_BUILTINS, scriptReadRoots } from "../import_policy.ts";
import { netDenyFlags } from "../net_deny.ts";
import { DEFAULT_MAX_RUNNABLE_THREADS, MemoryWatch, mib } from "../memory_watch.ts";
import { guardRuntimeWrites } from "../runtime_code.ts";
import { ToolFailure } from "../tool_failure.ts";
import {
  connectsOnly,
  DEFAULT_MAX_FILE_BYTES,
  type FilterProgram,
  filterProgramFor,
  kernelLimitsFor,
  loadKernelLimits,
} from "../kernel_limits.ts";
import { runtimeSettingsFromEnv, sandboxMaxFileBytesFromEnv } from "../settings_env.ts";
import { DEFAULT_MAX_DESCRIPTORS, limitedCommand } from "../descriptor_limit.ts";
import { refuseVsock } from "../vsock_refusal.ts";
import {
  isProcessControlEnv,
  normalizePermissions,
  PROCESS_CONTROL_WHY,
  processFlags,
} from "../permissions.ts";
import type { McpServerWire } from "./mcp_server_wire.ts";

/**
 * What a `script` server's `deno` needs to load its `npm:` imports, beside the SDK's defaults: its module
 * cache, the registry, and the way out to it. Behind a TLS-intercepting proxy the operator's CA settings are
 * what make the download work (a fresh CI clone failed "The TLS certificate could not be verified" without
 * them). Read by `deno` itself before the script runs; the script reads none of them without an `env` grant.
 */
const MODULE_FETCH_ENV = [
  "DENO_DIR",
  "XDG_CACHE_HOME",
  "NPM_CONFIG_REGISTRY",
  "DENO_CERT",
  "DENO_TLS_CA_STORE",
  "SSL_CERT_FILE",
  "SSL_CERT_DIR",
  "HTTPS_PROXY",
  "HTTP_PROXY",
  "NO_PROXY",
  "https_proxy",
  "http_proxy",
  "no_proxy",
];

/**
 * A transport for `server`; a stdio one starts its process when the client connects.
 *
 * @throws {ToolFailure} `tool_permission_denied` for a `script` server's grant that covers a protected file.
 */
export async function transportFor(
  server: McpServerWire,
  options: { maxResponseBytes?: number } = {},
): Promise<Transport> {
  if (server.url) {
    const url = new URL(server.url);
    const requestInit = { headers: server.headers ?? {} };
    const limit = options.maxResponseBytes;
    if (server.transport === "sse") {
      return limit === undefined
        ? new SSEClientTransport(url, { requestInit })
        : new BoundedSSEClientTransport(url, { requestInit }, server.id, limit);
    }
    return limit === undefined
      ? new StreamableHTTPClientTransport(url, { requestInit })
      : new BoundedStreamableHTTPClientTransport(url, { requestInit }, server.id, limit);
  }
  const { command, args } = server.script ? await scriptCommand(server, server.script) : {
    command: server.command!,
    args: server.args ?? [],
  };
  const params = {
    command,
    args,
    env: { ...getDefaultEnvironment(), ...moduleFetchEnv(), ...server.env },
    cwd: server.cwd,
    // Read by the toolbox and forwarded to the agent's logs (mcp_toolbox.ts).
    stderr: "pipe" as const,
  };
  return options.maxResponseBytes === undefined
    ? new StdioClientTransport(params)
    : new BoundedStdioClientTransport(
      params,
      server.id,
      options.maxResponseBytes,
      server.script ? SCRIPT_MEMORY_CEILING_BYTES : undefined,
    );
}

/**
 * A `script` server's V8 heap limit (`--max-old-space-size`), as a tool's sandbox has one: before, a script
 * that kept allocating grew the host's memory without bound (issue 10, sbx2). Twice a tool's default (the MCP
 * SDK and its schemas live in the heap too).
 */
export const SCRIPT_HEAP_LIMIT_MB = 512;

/**
 * A `script` server's resident memory ceiling: the heap limit does not cover ArrayBuffers, which live outside
 * V8's heap (memory_watch.ts says the same of tools), so the process is sampled from /proc and killed past
 * this (the tools' default ratio: twice the heap plus 64 MiB). Where /proc does not exist only the heap limit
 * applies.
 */
export const SCRIPT_MEMORY_CEILING_BYTES = (2 * SCRIPT_HEAP_LIMIT_MB + 64) * 1024 * 1024;

/**
 * Why the runtime killed a stdio server's process: a call that gave no answer within the server's `timeout`
 * (a script server stuck in a loop answers nothing more, and burns a core until killed), or memory past its
 * bound. The toolbox starts the server again at its next call.
 */
export class McpServerStopped extends Error {
  override name = "McpServerStopped";
  constructor(readonly server: string, readonly reason: "timeout" | "memory" | "threads", message: string) {
    super(message);
  }
}

/**
 * A stdio transport whose server may write at most `perRequest` bytes to stdout for each request sent to it
 * (one reply's worth, with notifications on the way), plus one such share for what it sends unasked; past
 * that its process is killed and {@linkcode overflow} says why. Each line the server writes is joined, parsed
 * and validated on the runtime's thread: a script server writing 9 MiB notifications without end held it
 * for 45-54 s at a time, every other call waiting (red team 8, S8).
 */
export class BoundedStdioClientTransport extends StdioClientTransport {
  /** Set once the server wrote past its share; the toolbox reports it as the failure's cause. */
  overflow?: McpResponseTooLarge;
  /** Set once the runtime killed the process ({@linkcode stop}, or its memory past the ceiling). */
  stopped?: McpServerStopped;
  #allowed: number;
  #written = 0;
  #memoryWatch: MemoryWatch | undefined;

  constructor(
    params: ConstructorParameters<typeof StdioClientTransport>[0],
    readonly serverId: string,
    readonly perRequest: number,
    /** Resident memory past which the process is killed; none: not sampled. */
    readonly memoryCeilingBytes?: number,
  ) {
    super(params);
    this.#allowed = perRequest;
  }

  /** Kills the server's process for `why`; what is in flight fails, and the toolbox reports `why`. */
  stop(why: McpServerStopped): void {
    this.stopped ??= why;
    this.#stopSampling();
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    child.kill("SIGKILL");
  }

  /** Whether the server's process has ended (or was never started). */
  get ended(): boolean {
    const child = this.child;
    return child === undefined || child.exitCode !== null || child.signalCode !== null;
  }

  /** The SDK keeps its child process private; an SDK that renames it fails here only. */
  private get child(): ChildProcess | undefined {
    return (this as unknown as { _process?: ChildProcess })._process;
  }

  async start(): Promise<void> {
    await super.start();
    // Its stdout is the only way to count what the server sends.
    const child = this.child;
    // Before the SDK's own listener, so that the chunk crossing the share is the last one it reads whole.
    child?.stdout?.prependListener("data", (chunk: Uint8Array) => {
      this.#written += chunk.length;
      if (this.#written <= this.#allowed || this.overflow) return;
      this.overflow = new McpResponseTooLarge(this.serverId, this.#allowed);
      child.stdout?.destroy();
      child.kill("SIGKILL");
    });
    if (this.memoryCeilingBytes !== undefined && child?.pid !== undefined) this.#sampleMemory(child);
  }

  /** Samples the process's resident memory until it exits (memory_watch.ts), killing it past the ceiling. */
  #sampleMemory(child: ChildProcess): void {
    const watch = new MemoryWatch(
      this.memoryCeilingBytes!,
      (rss, ceiling) =>
        `was killed: its resident memory, ${mib(rss)} MiB, passed the ceiling of ${mib(ceiling)} MiB`,
    );
    this.#memoryWatch = watch;
    watch.watch({
      pid: child.pid!,
      exited: this.ended ? Promise.resolve() : new Promise((exited) => child.once("exit", exited)),
      // A server keeping Deno's blocking threads busy (32 at once) starves the runtime's thread as a tool's
      // sandbox would (brk40): killed like one. It has no calls to blame: any window is its own.
      maxRunnableThreads: DEFAULT_MAX_RUNNABLE_THREADS,
      // Through the child, which refuses once it has exited: the pid may be another process's by then.
      kill: (reason, message) => {
        if (this.ended) return;
        if (reason === "threads") {
          this.stop(new McpServerStopped(this.serverId, "threads", `was killed: ${message}`));
        } else this.stop(new McpServerStopped(this.serverId, "memory", message));
      },
    });
  }

  #stopSampling(): void {
    this.#memoryWatch?.stop();
    this.#memoryWatch = undefined;
  }

  send(message: JSONRPCMessage, options?: TransportSendOptions): Promise<void> {
    if ("method" in message && "id" in message) this.#allowed += this.perRequest;
    return super.send(message, options);
  }

  /**
   * The SDK ends the server's stdin, then sends SIGTERM and, while the child's `exitCode` is `null`, SIGKILL
   * through `child.kill`; Deno's `node:child_process` marks the child killed at the SIGTERM and sends nothing
   * more, so a script that ignored SIGTERM outlived its agent call and `compozy dev` itself, adopted by PID 1
   * (red team 8 S15). A child whose exit was not seen once the SDK is done is killed by its pid.
   */
  async close(): Promise<void> {
    const child = this.child;
    // A child ended by a signal (the overflow's SIGKILL above) keeps `exitCode` null: its `signalCode` says so.
    let exited = child === undefined || child.exitCode !== null || child.signalCode !== null;
    child?.once("exit", () => (exited = true));
    this.#stopSampling();
    await super.close();
    if (exited || child?.pid === undefined) return;
    try {
      // Not reaped yet (no exit event): the pid is still this child's, alive or a zombie.
      Deno.kill(child.pid, "SIGKILL");
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    }
  }
}

/**
 * `deno run` of the script with its checked grants only: no prompt, no `run`/`ffi`/`sys`, no config, no
 * remote modules, no code from strings, the stack's ports denied.
 *
 * @throws {ToolFailure} `tool_permission_denied` (see {@linkcode resolveGrants}).
 */
export async function scriptCommand(
  server: McpServerWire,
  script: string,
): Promise<{ command: string; args: string[] }> {
  // Relative grants read like the script path itself: from compozy.yaml's folder (the working directory).
  const base = server.cwd ?? dirname(script);
  const permissions = normalizePermissions(server.permissions, base);
  // The script's env is its process's environment: a name the loader reads (LD_PRELOAD) would run native
  // code in the sandboxed `deno`, which its grants never allow.
  const control = Object.keys(server.env ?? {}).find(isProcessControlEnv);
  if (control) {
    throw new ToolFailure(
      "tool_permission_denied",
      `MCP server "${server.id}" cannot set env ${control}: ${PROCESS_CONTROL_WHY}`,
      { details: { server: server.id, env: control } },
    );
  }
  // The projects above the script and above its working directory (the project root) are both protected.
  const roots = await projectRoots(resolve(base));
  const alsoProtected = await rootsProtectedPaths(roots);
  // Its static graph is loaded without permission checks: the import policy is what keeps it from the
  // project's secrets (a text import of `.env`).
  await checkScriptModule(
    resolve(script),
    await neverGrantedFor([resolve(base), dirname(resolve(script))]),
    scriptReadRoots(resolve(script), resolve(base), server.permissions?.read),
  );
  const grants = await guardRuntimeWrites(
    await resolveGrants(permissions, dirname(script), alsoProtected),
    [script],
    roots,
  );
  // A script that may write, or has `net: true`, gets the kernel limits a tool's sandbox gets
  // (kernel_limits.ts), installed by its prelude through `ffi` on the C library only, revoked before the
  // script's own code runs.
  const limits = kernelLimitsFor(grants.permissions, sandboxMaxFileBytesFromEnv() ?? DEFAULT_MAX_FILE_BYTES);
  const program = limits === undefined ? undefined : filterProgramFor(Deno.build.arch, limits);
  const kernel = limits === undefined || program === undefined
    ? undefined
    : { library: limits.library, program, maxFileBytes: limits.maxFileBytes };
  // Through the shell line a tool's sandbox starts with (descriptor_limit.ts): its descriptor bound, and a
  // core size of 0, since the server's memory holds its env values and its working folder is the project
  // (outside break attempt brk36: it was started as `deno` itself, with the runtime's limits).
  return limitedCommand(
    denoExecutable(),
    [
      "run",
      "--no-config",
      "--no-lock",
      "--no-remote",
      "--no-prompt",
      "--quiet",
      `--v8-flags=--disallow-code-generation-from-strings,--max-old-space-size=${SCRIPT_HEAP_LIMIT_MB}`,
      `--preload=${scriptPrelude(kernel, connectsOnly(grants.permissions.net))}`,
      // Never omitted: the SDK spawns through node:child_process, and Deno's runs `deno run` with -A (every
      // permission) when its arguments hold no permission flag, as a script granted nothing would have.
      ...ALWAYS_DENIED,
      kernel === undefined ? "--deny-ffi" : `--allow-ffi=${kernel.library}`,
      ...processFlags(grants.permissions, [], { read: grants.denyRead, write: grants.denyWrite }),
      ...netDenyFlags(),
      script,
      ...(server.args ?? []),
    ],
    runtimeSettingsFromEnv().sandboxMaxDescriptors ?? DEFAULT_MAX_DESCRIPTORS,
  );
}

/**
 * Runs before a script server's own code (`--preload`, as a `data:` module: nothing to write to disk). A
 * `Worker` from a `data:` URL built at run time compiled a string into code past
 * `--disallow-code-generation-from-strings` (red team 8 S9), and `process.getBuiltinModule` reaches the
 * built-ins that evaluate strings (`vm`, `worker_threads`, `module`, `repl`), which the import policy refuses
 * only as imports. Deno's internals (`Deno[Deno.internal].core.evalContext`) compiled a string too, and
 * the code so built could `import()` a computed specifier past the script check (outside break attempt
 * brk-sbx3 G2); the tool worker deletes them the same way (tool_worker.ts). WebGPU's first adapter loads
 * the host's graphics libraries, which load native code named by env variables the script may set (G3, see
 * tool_worker.ts `refuseWebGpu`): `navigator.gpu` is removed too. Vsock is refused as in a tool's worker, by
 * the same function's source (vsock_refusal.ts): a `Deno.connect` of it ended the server with exit 70, and a
 * vsock proxy of `Deno.createHttpClient` reached the VM host with `net: true` (issue 10, sbx). The Cache API
 * and `localStorage` persist under Deno's cache (`location_data/`, keyed by the script's path) with no
 * `write` grant, the Cache API without bound: removed, as `caches` is in a tool's worker (issue 10, sbx).
 * File watching is refused as in a tool's worker (tool_worker.ts `refuseFileWatchers`; Node's `fs.watch`
 * goes through `Deno.watchFs`): a recursive watch holds inotify watches of the host's user, outside any
 * limit of the process (outside break attempts brk35 and brk36).
 */
function scriptPrelude(
  kernel: { library: string; program: FilterProgram; maxFileBytes?: number } | undefined,
  connectsOnly: boolean,
): string {
  // The limits go in first: a failure throws, and a `--preload` that throws ends the process before the
  // script runs (the server fails to start rather than run without them).
  const filter = kernel === undefined ? "" : `try {
  (${loadKernelLimits})(Deno, ${JSON.stringify(kernel.library)}, ${JSON.stringify(kernel.program)}, ${
    JSON.stringify(kernel.maxFileBytes)
  });
} catch (e) {
  throw new Error("the script MCP server could not install its kernel limits: " + e.message, { cause: e });
}
`;
  const datagrams = connectsOnly ? SCRIPT_DATAGRAM_PORTS : "";
  return "data:text/javascript," + encodeURIComponent(filter + SCRIPT_PRELUDE_REST + datagrams);
}

/**
 * A script whose `net` grant connects only (kernel_limits.ts `connectsOnly`) binds no UDP port, as a tool's
 * worker does (tool_worker.ts `refuseDatagramPorts`; outside break attempt brk36): the native UDP handle's
 * `bind` and `bind6`, which every `node:dgram` bind goes through, refuse any port but 0 with `EPERM`, fixed
 * so that the script's own code cannot put them back, with what they call taken before it runs.
 */
const SCRIPT_DATAGRAM_PORTS = `
{
  const udp = globalThis.process.binding("udp_wrap").UDP.prototype;
  const apply = Reflect.apply;
  for (const name of ["bind", "bind6"]) {
    const bind = udp[name];
    const value = function (ip, port, ...rest) { return port == 0 ? apply(bind, this, [ip, 0, ...rest]) : -1; };
    Object.defineProperty(udp, name, { value, writable: false, enumerable: true, configurable: false });
  }
}
`;

const SCRIPT_PRELUDE_REST = `
(${refuseVsock})(Deno, "a script MCP server");
delete globalThis.caches;
delete globalThis.localStorage;
delete globalThis.Worker;
delete Deno[Deno.internal];
Object.defineProperty(Deno, "watchFs", {
  value: () => {
    throw new Deno.errors.NotCapable("Deno.watchFs is refused in a script MCP server: file watches are a kernel resource shared by every process of the host's user; poll the file instead");
  },
  writable: false,
  configurable: false,
});
for (let h = globalThis.navigator; h; h = Object.getPrototypeOf(h)) {
  if (Object.hasOwn(h, "gpu")) { delete h.gpu; break; }
}
const p = globalThis.process;
if (p && typeof p.getBuiltinModule === "function") {
  const get = p.getBuiltinModule.bind(p);
  const refused = new Set(${JSON.stringify(SCRIPT_REFUSED_BUILTINS)});
  Object.defineProperty(p, "getBuiltinModule", {
    value: (id) => {
      if (refused.has(String(id).replace(/^node:/, ""))) throw new Error(id + " is refused in a script server: it runs strings as code or writes files past its grants");
      return get(id);
    },
  });
}
`;

/**
 * What a server sent past a bound: a response (`response`), one event of its event stream (`event`), or more
 * on that stream than its share for the requests sent to it (`stream`).
 */
export class McpResponseTooLarge extends Error {
  override name = "McpResponseTooLarge";
  constructor(
    readonly server: string,
    readonly limit: number,
    readonly bound: "response" | "event" | "stream" = "response",
  ) {
    super(`MCP server '${server}' sent ${overWhat(bound, limit)}`);
  }
}

/** What went over the bound, as a sentence's object: `a response over 69536 bytes`. */
export function overWhat(bound: McpResponseTooLarge["bound"], limit: number): string {
  switch (bound) {
    case "response":
      return `a response over ${limit} bytes`;
    case "event":
      return `an event over ${limit} bytes on its event stream`;
    case "stream":
      return `over ${limit} bytes on its event stream (its share for the requests sent to it)`;
  }
}

/**
 * What a `url` server may send on its event stream, the one that lasts the session (the SSE transport's,
 * which carries the answers to requests too, and streamable HTTP's GET stream of server messages): one share
 * of `perRequest` bytes for what it sends unasked plus one per request sent to it, as for a stdio server.
 * Past that, {@link overflow} is set and `cut` ends the session: the requests in flight fail at once (the
 * SDK fails them when its transport closes) rather than at their time limit, and a closed transport does not
 * open the stream again.
 */
class StreamBudget {
  overflow?: McpResponseTooLarge;
  #allowed: number;
  #streamed = 0;

  /** Ends the session; set by the transport once it exists. */
  cut: () => void = () => {};

  constructor(readonly serverId: string, readonly perRequest: number) {
    this.#allowed = perRequest;
  }

  requestSent(message: JSONRPCMessage): void {
    if ("method" in message && "id" in message) this.#allowed += this.perRequest;
  }

  /** Counts `bytes` more of the stream; the error to end it with once past the budget. */
  take(bytes: number): McpResponseTooLarge | undefined {
    this.#streamed += bytes;
    if (this.#streamed <= this.#allowed) return undefined;
    return this.#over(new McpResponseTooLarge(this.serverId, this.#allowed, "stream"));
  }

  /** An event over the bound of one response ends the session like a stream over its budget. */
  tooLargeEvent(): McpResponseTooLarge {
    return this.#over(new McpResponseTooLarge(this.serverId, this.perRequest, "event"));
  }

  /** The first bound passed is the one reported; the session is cut once. */
  #over(error: McpResponseTooLarge): McpResponseTooLarge {
    if (this.overflow) return this.overflow;
    this.overflow = error;
    // After the stream's error has reached the SDK's reader (the SSE transport rejects its start with it).
    setTimeout(this.cut, 0);
    return error;
  }
}

/**
 * An SDK `url` transport (SSE or streamable HTTP): built from its URL and options, which take the `fetch` it
 * sends with; streamable HTTP may send a batch (an array) where SSE sends one message.
 */
interface UrlTransport extends Transport {
  send(message: JSONRPCMessage | JSONRPCMessage[], options?: TransportSendOptions): Promise<void>;
}
type UrlTransportClass<Options> = new (url: URL, opts: Options & { fetch?: typeof fetch }) => UrlTransport;

/**
 * `Base` whose answers and event stream are bounded (see {@link boundedFetch}): `perRequest` bytes for one
 * response or event, and a {@link StreamBudget} of them for the stream that lasts the session.
 */
function bounded<Options>(Base: UrlTransportClass<Options>) {
  return class extends Base {
    readonly #budget: StreamBudget;

    constructor(url: URL, opts: Options, serverId: string, perRequest: number) {
      const budget = new StreamBudget(serverId, perRequest);
      super(url, { ...opts, fetch: boundedFetch(serverId, perRequest, budget) });
      // The SDK's classes type as `any` here (its subpath exports carry no types Deno resolves).
      budget.cut = () => void (this as Transport).close();
      this.#budget = budget;
    }

    /** Set once the server sent past its bound; the toolbox reports it as the failure's cause. */
    get overflow(): McpResponseTooLarge | undefined {
      return this.#budget.overflow;
    }

    override send(message: JSONRPCMessage | JSONRPCMessage[], options?: TransportSendOptions): Promise<void> {
      for (const one of Array.isArray(message) ? message : [message]) this.#budget.requestSent(one);
      return super.send(message, options);
    }
  };
}

/** An SSE transport (`transport: sse`) whose stream and answers are bounded (see {@link bounded}). */
export const BoundedSSEClientTransport = bounded<SSEClientTransportOptions>(SSEClientTransport);
export type BoundedSSEClientTransport = InstanceType<typeof BoundedSSEClientTransport>;

/** A streamable-HTTP transport whose answers and GET stream are bounded (see {@link bounded}). */
export const BoundedStreamableHTTPClientTransport = bounded<StreamableHTTPClientTransportOptions>(
  StreamableHTTPClientTransport,
);
export type BoundedStreamableHTTPClientTransport = InstanceType<typeof BoundedStreamableHTTPClientTransport>;

/** What a bounded transport says it was cut off for (it sent past its bound), if it was. */
export function transportOverflow(transport: Transport): McpResponseTooLarge | undefined {
  if (
    transport instanceof BoundedStdioClientTransport || transport instanceof BoundedSSEClientTransport ||
    transport instanceof BoundedStreamableHTTPClientTransport
  ) return transport.overflow;
  return undefined;
}

/**
 * `fetch` for a `url` server's transport, bounding everything the server sends:
 * - the response to each POST (a request's answer, as JSON or as a short SSE stream) errors with
 *   {@link McpResponseTooLarge} past `limit` bytes: a result is otherwise read whole before its size is
 *   checked, and one that never ends would fill the runtime's memory until the call's time-out;
 * - the GET event stream, which lasts the session, errors past `budget` (see {@link StreamBudget}) or at an
 *   event over `limit` bytes, and the session is cut: one event without end filled the runtime's memory (the
 *   SDK's SSE parser keeps an event's text whole until it ends), and small events without end kept its thread
 *   parsing them for the whole agent call (issue 10).
 */
function boundedFetch(serverId: string, limit: number, budget: StreamBudget): typeof fetch {
  return async (input, init) => {
    const response = await fetch(input, init);
    const method = (init?.method ?? "GET").toUpperCase();
    // A redirect or an error of the GET is cancelled or refused by the SDK, never read as a stream.
    if (!response.body || (method !== "POST" && !response.ok)) return response;
    const counted = response.body.pipeThrough(
      method === "POST" ? boundedBody(serverId, limit) : boundedEventStream(limit, budget),
    );
    return new Response(counted, {
      status: response.status,
      statusText: response.statusText,
      headers: response.headers,
    });
  };
}

/** A body that errors past `limit` bytes. */
function boundedBody(serverId: string, limit: number): TransformStream<Uint8Array, Uint8Array> {
  let seen = 0;
  return new TransformStream({
    transform(chunk, controller) {
      seen += chunk.byteLength;
      if (seen > limit) controller.error(new McpResponseTooLarge(serverId, limit));
      else controller.enqueue(chunk);
    },
  });
}

const LF = 0x0a;
const CR = 0x0d;

/**
 * An SSE stream that errors once `budget` runs out or one event passes `limit` bytes. An event ends at a
 * blank line (two line ends in a row: LF, CR or CR LF, as the SSE specification reads them); the bytes since
 * the last one are counted as they pass, so nothing is held.
 */
function boundedEventStream(limit: number, budget: StreamBudget): TransformStream<Uint8Array, Uint8Array> {
  let eventBytes = 0;
  let lineBytes = 0;
  let afterCR = false;
  return new TransformStream({
    transform(chunk, controller) {
      const over = budget.take(chunk.byteLength);
      if (over) return controller.error(over);
      for (let i = 0; i < chunk.length; i++) {
        const byte = chunk[i];
        const crlf = afterCR && byte === LF;
        afterCR = byte === CR;
        if (crlf) continue; // the second half of one line end
        if (byte === LF || byte === CR) {
          if (lineBytes === 0) eventBytes = 0; // a blank line: the event ended
          lineBytes = 0;
          continue;
        }
        lineBytes++;
        if (++eventBytes > limit) return controller.error(budget.tooLargeEvent());
      }
      controller.enqueue(chunk);
    },
  });
}

/**
 * What a script server is never given, said explicitly (see `scriptCommand`); `ffi` too, but for the C
 * library of a script that may write or has `net: true`, which its prelude revokes once its kernel limits
 * are in.
 */
const ALWAYS_DENIED = ["--deny-run", "--deny-sys"];

function moduleFetchEnv(): Record<string, string> {
  return Object.fromEntries(
    MODULE_FETCH_ENV.map((name) => [name, Deno.env.get(name)]).filter((entry): entry is [string, string] =>
      entry[1] !== undefined
    ),
  );
}
