/**
 * How MCP goes wrong, in two kinds:
 * - at the start of an agent call (connecting, listing tools): an {@link AgentFailure} that ends the call,
 *   `agent_mcp_unavailable` (retryable: down, slow, the process would not start) or `agent_mcp_invalid`
 *   (not retryable: a malformed tool list, a selected tool the server does not list, a name two tools share);
 * - in one tool call: an {@link McpCallFailure} that, like a sandbox tool's failure, goes back to the model
 *   as that call's error result and does not end the agent call.
 *
 * @module
 */

import { ErrorCode, McpError } from "@modelcontextprotocol/sdk/types.js";
import { AgentFailure, errorMessage, withMessage } from "../agent/agent_failure.ts";
import type { Redactor } from "../secret_redaction.ts";
import { describeServer, type McpServerWire } from "./mcp_server_wire.ts";
import { McpResponseTooLarge, McpServerStopped, overWhat } from "./mcp_transport.ts";

/**
 * | code | when |
 * |---|---|
 * | `mcp_tool_error` | the tool reported an error (`isError`), or the server answered the call with an error |
 * | `mcp_timeout` | no answer within the server's `timeout` (the server is told to cancel) |
 * | `mcp_result_invalid` | the result is not a valid MCP tool result |
 * | `mcp_output_too_large` | the result's JSON is over the runtime's tool output limit |
 * | `mcp_unavailable` | the connection failed during the call |
 * | `mcp_memory_exceeded` | a `script` server's process passed its heap limit or resident memory ceiling |
 * | `mcp_cpu_exceeded` | a `script` server's process kept more than 4 threads runnable at once (past it by 2 on average over 2 s) |
 *
 * A `script` server whose call ran out of time, memory or CPU share is killed, and started again at the next call.
 */
export type McpCallFailureCode =
  | "mcp_tool_error"
  | "mcp_timeout"
  | "mcp_memory_exceeded"
  | "mcp_cpu_exceeded"
  | "mcp_result_invalid"
  | "mcp_output_too_large"
  | "mcp_unavailable";

/** A failed MCP tool call; its message is what the model reads. */
export class McpCallFailure extends Error {
  override name = "McpCallFailure";
  constructor(readonly code: McpCallFailureCode, message: string, options: { cause?: unknown } = {}) {
    super(message, options);
  }
}

/** `error` or the first of its causes that is a `type`. */
function causeOf<T>(error: unknown, type: new (...args: never[]) => T): T | undefined {
  for (let e = error, depth = 0; e && depth < 8; e = (e as { cause?: unknown }).cause, depth++) {
    if (e instanceof type) return e;
  }
  return undefined;
}

/** A result that failed the SDK's schema of its kind (the SDK rejects with the zod error). */
export function isMalformedReply(error: unknown): boolean {
  return Array.isArray((error as { issues?: unknown })?.issues);
}

/** The JSON-RPC error code of an SDK error; `undefined` for anything else (a network error, say). */
function mcpErrorCode(error: unknown): number | undefined {
  return error instanceof McpError ? (error as { code: number }).code : undefined;
}

export function isTimeout(error: unknown): boolean {
  return mcpErrorCode(error) === ErrorCode.RequestTimeout;
}

/** What a start failure can say beside the error: the bound that ran out, a stdio server's last stderr. */
export interface StartContext {
  /** The bound of the step; the server's `timeout` when absent. */
  boundMs?: number;
  /** The tail of a stdio server's stderr (empty: it wrote nothing). */
  stderr?: string;
}

/** A failure of connecting to `server` or of listing its tools. */
export function startFailure(
  server: McpServerWire,
  step: string,
  error: unknown,
  context: StartContext = {},
): AgentFailure {
  const what = `${describeServer(server)}: ${step} failed`;
  const tooLarge = causeOf(error, McpResponseTooLarge);
  if (tooLarge) {
    // A stdio server's reply, or an HTTP one's, is "the reply"; an event stream is cut as what it is.
    const over = tooLarge.bound === "response"
      ? `the reply is over ${tooLarge.limit} bytes`
      : `the server sent ${overWhat(tooLarge.bound, tooLarge.limit)}, and was cut off`;
    return mcpInvalid(`${what}: ${over}`, server, error);
  }
  if (isMalformedReply(error)) {
    return mcpInvalid(`${what}: the reply is not a valid MCP message: ${errorMessage(error)}`, server, error);
  }
  let why = isTimeout(error)
    ? `no answer within ${context.boundMs ?? server.timeoutMs} ms`
    : errorMessage(error);
  // A stdio server that ended before answering says why on stderr (a crash, a refused permission).
  if (mcpErrorCode(error) === ErrorCode.ConnectionClosed && context.stderr !== undefined) {
    why += `: the server's process ended before answering; its stderr: ${context.stderr || "(nothing)"}`;
  }
  return new AgentFailure("agent_mcp_unavailable", `${what}: ${why}`, {
    retryable: true,
    details: { server: server.id, step },
    cause: error,
  });
}

/** A tool list or a selection the agent cannot run with; the same server gives the same answer next time. */
export function mcpInvalid(message: string, server: McpServerWire, cause?: unknown): AgentFailure {
  return new AgentFailure("agent_mcp_invalid", message, {
    retryable: false,
    details: { server: server.id },
    cause,
  });
}

/** A failure of calling `tool` on `server`. */
export function callFailure(server: McpServerWire, tool: string, error: unknown): McpCallFailure {
  const what = `MCP tool '${tool}' of server '${server.id}'`;
  if (error instanceof McpCallFailure) return error;
  if (error instanceof McpServerStopped) {
    return new McpCallFailure(
      error.reason === "timeout"
        ? "mcp_timeout"
        : error.reason === "threads"
        ? "mcp_cpu_exceeded"
        : "mcp_memory_exceeded",
      `${what} could not finish: the server's process ${error.message}; it starts again at the next call`,
      { cause: error },
    );
  }
  const tooLarge = causeOf(error, McpResponseTooLarge);
  if (tooLarge) {
    return new McpCallFailure(
      "mcp_output_too_large",
      tooLarge.bound === "response"
        ? `${what} sent a response over ${tooLarge.limit} bytes (its output limit four times over), cut there`
        : `${what} could not be called: the server sent ${
          overWhat(tooLarge.bound, tooLarge.limit)
        } and was cut off`,
      { cause: error },
    );
  }
  if (isTimeout(error)) {
    return new McpCallFailure("mcp_timeout", `${what} gave no answer within ${server.timeoutMs} ms`, {
      cause: error,
    });
  }
  if (isMalformedReply(error)) {
    return new McpCallFailure(
      "mcp_result_invalid",
      `${what} returned an invalid result: ${errorMessage(error)}`,
      {
        cause: error,
      },
    );
  }
  const code = mcpErrorCode(error);
  if (code !== undefined && code !== ErrorCode.ConnectionClosed) {
    return new McpCallFailure("mcp_tool_error", `${what} failed: ${errorMessage(error)}`, { cause: error });
  }
  return new McpCallFailure("mcp_unavailable", `${what} could not be called: ${errorMessage(error)}`, {
    cause: error,
  });
}

/**
 * The failure with a server's secrets masked in its message (see `serverRedactor`, mcp_toolbox.ts). When
 * something was masked, its cause (the SDK's error, or the server's own words) is not kept: it says the same.
 * Anything but an {@link AgentFailure} or an {@link McpCallFailure} is returned as is.
 */
export function redactMcpFailure(error: unknown, redact: Redactor): unknown {
  if (!(error instanceof AgentFailure) && !(error instanceof McpCallFailure)) return error;
  const message = redact(error.message);
  if (message === error.message) return error;
  if (error instanceof McpCallFailure) return new McpCallFailure(error.code, message);
  return withMessage(error, message);
}
