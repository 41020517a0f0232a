/**
 * The MCP tools of one agent call: connects to the servers the agent names, lists their tools once at the
 * start, calls them during the loop, and disconnects (a stdio server's process ends) when the call ends.
 *
 * Semantics, exactly:
 * - Every server is connected and listed before the first model request; any failure there ends the agent
 *   call before the model is asked anything ({@link startFailure}, {@link mcpInvalid}).
 * - Each request to a server (connect, each page of the list, each call) is bounded by its `timeoutMs` and by
 *   the agent call's signal; a request that runs out is cancelled at the server. A stdio server's connect
 *   (its process's start) is bounded by {@link STDIO_START_TIMEOUT_MS} when that is longer; if the process
 *   ends before answering, the failure quotes its stderr.
 * - The model sees each tool under its MCP name. With `tools` absent the agent gets every listed tool whose
 *   name a model can take (others are left out with a warning); a selected tool the server does not list, or
 *   a name two tools share (two servers, or a server and the agent's own tools), fails the call.
 * - A tool call's failure is an {@link McpCallFailure}: it goes back to the model, the loop goes on.
 * - A `script` server's process is killed when a call gives no answer within its `timeout`, or its memory
 *   passes its bound; it is started again at its next call, at most {@linkcode MAX_SCRIPT_RESTARTS} times.
 *
 * @module
 */

import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import type { Tool } from "@modelcontextprotocol/sdk/types.js";
import type { Transport } from "@modelcontextprotocol/sdk/shared/transport.js";
import { getLogger } from "../../logger/mod.ts";
import type { AgentToolSpec } from "../agent/agent_call.ts";
import { errorMessage } from "../agent/agent_failure.ts";
import {
  callFailure,
  isTimeout,
  McpCallFailure,
  mcpInvalid,
  redactMcpFailure,
  startFailure,
} from "./mcp_failure.ts";
import { type Redactor, redactorFor, urlSecretValues } from "../secret_redaction.ts";
import { describeServer, type McpServerWire } from "./mcp_server_wire.ts";
import { ToolFailure } from "../tool_failure.ts";
import { LOG_LINE_COST } from "../protocol.ts";
import {
  BoundedStdioClientTransport,
  McpServerStopped,
  SCRIPT_HEAP_LIMIT_MB,
  transportFor,
  transportOverflow,
} from "./mcp_transport.ts";
import { reportsOutOfMemory } from "../sandbox_stderr.ts";
import { DEFAULT_MAX_OUTPUT_DEPTH, jsonTooDeep } from "../output_limits.ts";

/** Names every provider accepts for a function (OpenAI's rule, the strictest); also the config's rule. */
const MODEL_TOOL_NAME = /^[A-Za-z0-9_-]{1,64}$/;

/** A server listing more pages than this is treated as malformed rather than followed forever. */
const MAX_LIST_PAGES = 50;
/**
 * More tools than a server may list: far over what a model takes in one request (OpenAI's limit is 128),
 * and each listed tool costs the runtime's thread a check (red team 8 S13: 120,000 in one reply).
 */
export const MAX_LISTED_TOOLS = 1_000;

/** How much of one stderr chunk of a stdio server reaches the logs. */
const MAX_LOG_CHUNK = 2_000;

/**
 * The least a stdio server's start (its process spawned, `initialize` answered) is given, whatever its
 * per-request `timeout`: a cold `deno run` of a script server took 14-22 s at load ~10 on 2 cores.
 */
export const STDIO_START_TIMEOUT_MS = 60_000;

/** How much of a stdio server's last stderr a start failure quotes. */
const MAX_STDERR_TAIL = 2_000;

/**
 * The `_meta` field of a `tools/call` request that carries the call's idempotency key, the same key a sandbox
 * tool gets as `ctx.taskExecId`: a call run again after a crash (its result was not recorded) carries the same
 * key, so a server that keeps side effects by key does them once. MCP has no standard field for it; `_meta`
 * keys with a prefix are the extension point the specification gives.
 */
export const IDEMPOTENCY_KEY_META = "compozy/idempotency-key";

/**
 * How much of one HTTP response is read: the output limit four times over (a result's JSON-RPC envelope,
 * its escapes, text given both as content and as structure) plus 64 KiB for the rest; the output limit
 * itself is checked on the result read.
 */
export function maxResponseBytes(maxOutputBytes: number): number {
  return 4 * maxOutputBytes + 64 * 1024;
}

const log = getLogger(["runtime", "mcp"]);
/** What a stdio server's stderr may put in the logs per start, with {@linkcode LOG_LINE_COST} per record: a tool call's default. */
export const MAX_SERVER_LOG_BYTES = 256 * 1024;
const encoder = new TextEncoder();
const CLIENT_INFO = { name: "compozy", version: "0.1.0" };

export interface McpToolboxOptions {
  /** A result whose JSON is larger than this fails the call with `mcp_output_too_large`. */
  maxOutputBytes: number;
  /** Tool names already given to the model (the agent's own tools). */
  reserved?: Iterable<string>;
  /** Ends connecting, listing and calls in flight (the agent call's time-out or cancel). */
  signal?: AbortSignal;
  /** Receives what a stdio server writes on stderr. */
  onServerOutput?: (server: string, text: string) => void;
}

export interface McpToolbox {
  /** The tools for the model, server by server in the agent's order. */
  readonly tools: AgentToolSpec[];
  has(name: string): boolean;
  /**
   * Calls the tool, with the call's idempotency key (`<task exec id>:<turn>:<index>`) in the request's
   * `_meta` as {@link IDEMPOTENCY_KEY_META}; rejects with an {@link McpCallFailure}.
   */
  call(name: string, input: unknown, idempotencyKey?: string): Promise<unknown>;
  /** Disconnects every server; never throws. */
  close(): Promise<void>;
}

interface Connected {
  server: McpServerWire;
  client: Client;
  transport: Transport;
  /** What a stdio server wrote on stderr last, and whether it reported running out of memory. */
  stderr: StderrTail;
  /** Why a server was cut off (it sent past its bound, see mcp_transport.ts), the cause of what failed after. */
  cutOff: () => unknown;
}

/** A server of the toolbox: connected, and started again when a `script` server's process ended. */
interface Served extends Connected {
  /** How many times its process was started again in this agent call. */
  restarts: number;
  /** A start again under way, which calls meanwhile wait for. */
  restarting?: Promise<void>;
}

/**
 * How many times a `script` server is started again in one agent call. Each start is a `deno run` (seconds on
 * a loaded machine); a server that keeps looping or running out of memory fails its calls at once past this.
 */
export const MAX_SCRIPT_RESTARTS = 3;

/**
 * Connects to `servers` and lists their tools.
 *
 * @throws {AgentFailure} `agent_mcp_unavailable` or `agent_mcp_invalid`; nothing stays connected then.
 */
export async function openMcpToolbox(
  servers: McpServerWire[],
  options: McpToolboxOptions,
): Promise<McpToolbox> {
  const settled = await Promise.allSettled(servers.map((server) => connect(server, options)));
  const connected: Served[] = settled.flatMap((s) =>
    s.status === "fulfilled" ? [{ ...s.value, restarts: 0 }] : []
  );
  // A start again under way when the agent call ends would leave its new process behind: it ends first.
  const close = async () => {
    await Promise.allSettled(connected.map((entry) => entry.restarting));
    await closeAll(connected);
  };
  const failedAt = settled.findIndex((s) => s.status === "rejected");
  if (failedAt >= 0) {
    await close();
    throw redactMcpFailure(
      (settled[failedAt] as PromiseRejectedResult).reason,
      serverRedactor(servers[failedAt]),
    );
  }
  try {
    const owners = new Map<string, Served>();
    const tools: AgentToolSpec[] = [];
    const reserved = new Set(options.reserved ?? []);
    for (const entry of connected) {
      for (const tool of await selectedTools(entry, options.signal)) {
        const taken = owners.get(tool.name)?.server.id ??
          (reserved.has(tool.name) ? "the agent's own tools" : "");
        if (taken) {
          throw mcpInvalid(
            `${describeServer(entry.server)} lists tool '${tool.name}', a name ${
              taken === "the agent's own tools" ? taken : `MCP server '${taken}'`
            } already gives the model; name the tools to take with mcp(id=${entry.server.id}, tool=…)`,
            entry.server,
          );
        }
        owners.set(tool.name, entry);
        tools.push({
          id: tool.name,
          description: tool.description,
          inputSchema: tool.inputSchema,
          mcpServer: entry.server.id,
        });
      }
    }
    return {
      tools,
      has: (name) => owners.has(name),
      call: (name, input, idempotencyKey) => {
        const owner = owners.get(name)!;
        return callTool(owner, name, input, idempotencyKey, options).catch((error) => {
          throw redactMcpFailure(error, serverRedactor(owner.server));
        });
      },
      close,
    };
  } catch (error) {
    await close();
    throw error;
  }
}

/**
 * Masks a server's env and header values (often tokens rendered from `.env`) in what the runtime reports about
 * it: its stderr in the logs and in failures, and its failures' messages, which the model reads and the agent's
 * history keeps; as a sandbox tool's env values are masked in its logs and failures (secret_redaction.ts).
 * Before (outside break attempt brk38), a script server's token it wrote on stderr or in an error went into
 * the logs stream, the task's failure and the history as is.
 */
function serverRedactor(server: McpServerWire): Redactor {
  const inUrl = Object.fromEntries(urlSecretValues(server.url).map((value, i) => [`url${i}`, value]));
  return redactorFor({ ...server.env, ...server.headers, ...inUrl }) ?? ((text) => text);
}

async function connect(server: McpServerWire, options: McpToolboxOptions): Promise<Connected> {
  const client = new Client(CLIENT_INFO);
  let transport;
  try {
    transport = await transportFor(server, { maxResponseBytes: maxResponseBytes(options.maxOutputBytes) });
  } catch (error) {
    // A refused grant is the project's mistake: the next call would be refused the same way.
    if (error instanceof ToolFailure) {
      throw mcpInvalid(`${describeServer(server)}: ${error.message}`, server, error);
    }
    throw startFailure(server, "starting", error);
  }
  const stdio = transport instanceof StdioClientTransport;
  const redact = serverRedactor(server);
  const stderr = new StderrTail(redact);
  const cutOff = () => transportOverflow(transport);
  if (transport instanceof StdioClientTransport) {
    // Each chunk is a log record: charged like a tool's console line, against one budget per server start
    // (red team 8 S10: a script writing stderr without end left 32,877 records, 83 MB, in 20 s).
    let logBudget = MAX_SERVER_LOG_BYTES;
    transport.stderr?.on("data", (chunk: Uint8Array | string) => {
      stderr.add(String(chunk));
      if (logBudget < 0) return;
      const text = redact(String(chunk)).slice(0, MAX_LOG_CHUNK).trimEnd();
      if (!text) return;
      logBudget -= encoder.encode(text).length + LOG_LINE_COST;
      options.onServerOutput?.(
        server.id,
        logBudget >= 0
          ? text
          : `(its stderr is over ${MAX_SERVER_LOG_BYTES} bytes of log for this start; the rest is dropped)`,
      );
    });
  }
  // Connecting a stdio server starts its process: a cold `deno run` is not a request and may take far longer
  // than the server's `timeout` on a loaded machine, so its start waits at least STDIO_START_TIMEOUT_MS.
  const boundMs = stdio ? Math.max(server.timeoutMs, STDIO_START_TIMEOUT_MS) : server.timeoutMs;
  try {
    await client.connect(transport, { timeout: boundMs, signal: options.signal });
  } catch (error) {
    await closeAll([{ server, client, transport, stderr, cutOff }]);
    throw startFailure(server, "connecting", cutOff() ?? error, {
      boundMs,
      stderr: stdio ? stderr.text() : undefined,
    });
  }
  return { server, client, transport, stderr, cutOff };
}

/** The listed tools the agent gets, in the server's order (or in the agent's order when it selects). */
async function selectedTools({ server, client, cutOff }: Connected, signal?: AbortSignal): Promise<Tool[]> {
  const listed = await listTools(server, client, cutOff, signal);
  const byName = new Map(listed.map((tool) => [tool.name, tool]));
  if (server.tools) {
    return server.tools.map((name) => {
      const tool = byName.get(name);
      if (tool) return tool;
      throw mcpInvalid(
        `${describeServer(server)} does not list tool '${name}' (it lists: ${
          listed.map((t) => t.name).join(", ") || "no tools"
        })`,
        server,
      );
    });
  }
  const kept = listed.filter((tool) => MODEL_TOOL_NAME.test(tool.name));
  const left = listed.filter((tool) => !MODEL_TOOL_NAME.test(tool.name)).map((tool) => tool.name);
  // One record per listing, not per tool: 120,000 left-out names were 120,000 records (red team 8 S13).
  if (left.length > 0) {
    log.warn(
      "Left out {count} tool(s) of MCP server {server} ({names}): models take names matching {pattern} only",
      {
        count: left.length,
        server: server.id,
        names: left.slice(0, 5).map((name) => name.slice(0, 80)).join(", ") + (left.length > 5 ? ", …" : ""),
        pattern: MODEL_TOOL_NAME.source,
      },
    );
  }
  return kept;
}

async function listTools(
  server: McpServerWire,
  client: Client,
  cutOff: () => unknown,
  signal?: AbortSignal,
): Promise<Tool[]> {
  const tools: Tool[] = [];
  let cursor: string | undefined;
  for (let page = 0; page < MAX_LIST_PAGES; page++) {
    try {
      const reply = await client.listTools(cursor ? { cursor } : undefined, {
        timeout: server.timeoutMs,
        signal,
      });
      tools.push(...reply.tools);
      cursor = reply.nextCursor;
    } catch (error) {
      throw startFailure(server, "listing tools", cutOff() ?? error);
    }
    if (tools.length > MAX_LISTED_TOOLS) {
      throw mcpInvalid(`${describeServer(server)} lists more than ${MAX_LISTED_TOOLS} tools`, server);
    }
    if (!cursor) return tools;
  }
  throw mcpInvalid(`${describeServer(server)} lists tools over more than ${MAX_LIST_PAGES} pages`, server);
}

async function callTool(
  entry: Served,
  name: string,
  input: unknown,
  idempotencyKey: string | undefined,
  options: McpToolboxOptions,
): Promise<unknown> {
  const { server } = entry;
  await startAgainIfStopped(entry, name, options);
  const args = typeof input === "object" && input !== null && !Array.isArray(input)
    ? input as Record<string, unknown>
    : {};
  const meta = idempotencyKey ? { _meta: { [IDEMPOTENCY_KEY_META]: idempotencyKey } } : {};
  let result;
  try {
    result = await entry.client.callTool({ name, arguments: args, ...meta }, undefined, {
      timeout: server.timeoutMs,
      signal: options.signal,
    });
  } catch (error) {
    throw callFailure(server, name, scriptStopped(entry, name, error) ?? entry.cutOff() ?? error);
  }
  const value = resultValue(server, name, result);
  const text = JSON.stringify(value ?? null);
  const bytes = encoder.encode(text).length;
  if (bytes > options.maxOutputBytes) {
    throw new McpCallFailure(
      "mcp_output_too_large",
      `MCP tool '${name}' of server '${server.id}' returned ${bytes} bytes of output, over the limit of ${options.maxOutputBytes}`,
    );
  }
  // Bounded in depth like a sandbox tool's output (output_limits.ts): it goes to the model and into the history,
  // whose readers break on a value nested 100,000 levels deep (outside break attempt brk38).
  if (jsonTooDeep(text, DEFAULT_MAX_OUTPUT_DEPTH)) {
    throw new McpCallFailure(
      "mcp_result_invalid",
      `MCP tool '${name}' of server '${server.id}' returned output that nests arrays and objects deeper than ${DEFAULT_MAX_OUTPUT_DEPTH} levels`,
    );
  }
  return value;
}

/**
 * Why a `script` server's process is gone, when it is: a call that gave no answer within the server's
 * `timeout` kills it (a script stuck in a loop answers nothing more and burns a core until killed, so every
 * later call would wait its whole time-out), as does its memory past the ceiling (mcp_transport.ts); V8's
 * heap limit ends it by itself, saying so on stderr. Before, nothing bounded a script server's CPU or memory
 * (issue 10, sbx2). A `command` server is the operator's program: its slow call is only cancelled.
 */
function scriptStopped(entry: Served, name: string, error: unknown): McpServerStopped | undefined {
  const { server, transport } = entry;
  if (!server.script || !(transport instanceof BoundedStdioClientTransport)) return undefined;
  if (isTimeout(error)) {
    transport.stop(
      new McpServerStopped(
        server.id,
        "timeout",
        `was killed: its call of '${name}' gave no answer within ${server.timeoutMs} ms`,
      ),
    );
  } else if (entry.stderr.outOfMemory && transport.ended) {
    transport.stopped ??= new McpServerStopped(
      server.id,
      "memory",
      `ran out of memory (its heap limit is ${SCRIPT_HEAP_LIMIT_MB} MB)`,
    );
  }
  return transport.stopped;
}

/**
 * Starts a `script` server again when its process was stopped or has ended, at most
 * {@linkcode MAX_SCRIPT_RESTARTS} times in the agent call; calls meanwhile wait for the same start.
 *
 * @throws {McpCallFailure} `mcp_unavailable` past that, or when it does not start.
 */
async function startAgainIfStopped(entry: Served, name: string, options: McpToolboxOptions): Promise<void> {
  const { server, transport } = entry;
  if (entry.restarting) return await entry.restarting;
  if (!server.script || !(transport instanceof BoundedStdioClientTransport)) return;
  if (transport.stopped === undefined && !transport.ended) return;
  const what = `MCP tool '${name}' of server '${server.id}' could not be called`;
  const why = `its process ${transport.stopped?.message ?? "ended"}`;
  if (entry.restarts >= MAX_SCRIPT_RESTARTS) {
    throw new McpCallFailure(
      "mcp_unavailable",
      `${what}: the server was started again ${MAX_SCRIPT_RESTARTS} times in this agent call and is not started again (last: ${why})`,
    );
  }
  entry.restarts++;
  entry.restarting = (async () => {
    await closeAll([entry]);
    try {
      const { client, transport, stderr, cutOff } = await connect(server, options);
      Object.assign(entry, { client, transport, stderr, cutOff });
    } catch (error) {
      throw new McpCallFailure(
        "mcp_unavailable",
        `${what}: starting the server again failed: ${errorMessage(error)}`,
        {
          cause: error,
        },
      );
    }
  })();
  try {
    await entry.restarting;
  } finally {
    entry.restarting = undefined;
  }
}

type CallResult = Awaited<ReturnType<Client["callTool"]>>;
type ContentItem = { type: string; text?: string };

/** Structured content when the tool gives it; else its text, or its content items when not all are text. */
function resultValue(server: McpServerWire, name: string, result: CallResult): unknown {
  if ("toolResult" in result) return result.toolResult;
  const content = (result.content ?? []) as ContentItem[];
  const allText = content.every((item) => item.type === "text");
  if (result.isError) {
    const text = allText ? content.map((item) => item.text).join("\n") : JSON.stringify(content);
    throw new McpCallFailure("mcp_tool_error", `MCP tool '${name}' of server '${server.id}' failed: ${text}`);
  }
  if (result.structuredContent !== undefined) return result.structuredContent;
  return allText ? content.map((item) => item.text).join("\n") : content;
}

async function closeAll(connected: Connected[]): Promise<void> {
  await Promise.all(connected.map(async ({ server, client }) => {
    try {
      await client.close();
    } catch (error) {
      log.warn("Closing MCP server {server} failed: {error}", {
        server: server.id,
        error: errorMessage(error),
      });
    }
  }));
}

/**
 * The last {@link MAX_STDERR_TAIL} characters a stdio server wrote on stderr: why it ended, when it did; and
 * whether any of it was V8's or Deno's out-of-memory report (the C stack trace after it can push it out of
 * the tail).
 */
class StderrTail {
  #text = "";
  outOfMemory = false;
  /** Masks the server's secrets: applied to the whole tail, so a value split across chunks is masked too. */
  constructor(readonly redact: Redactor) {}
  add(chunk: string): void {
    this.outOfMemory ||= reportsOutOfMemory(this.#text.slice(-200) + chunk);
    this.#text = (this.#text + chunk).slice(-MAX_STDERR_TAIL);
  }
  text(): string {
    return this.redact(this.#text).trim();
  }
}
