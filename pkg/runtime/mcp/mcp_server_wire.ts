/**
 * An MCP server as the engine sends it with an agent (engine/domain/workflow/services.ts): templates rendered,
 * paths absolute, the time-out in milliseconds, and which of its tools the agent may call.
 *
 * @module
 */

import type { ToolPermissions } from "../permissions.ts";

export interface McpServerWire {
  id: string;
  /** Streamable HTTP (default) or SSE endpoint. */
  url?: string;
  transport?: "streamable-http" | "sse";
  headers?: Record<string, string>;
  /** Absolute path of a Deno module serving MCP on stdio, run with `permissions` only. */
  script?: string;
  permissions?: ToolPermissions;
  /** Any program serving MCP on stdio, run with the runtime's rights. */
  command?: string;
  args?: string[];
  env?: Record<string, string>;
  /** Working directory of a `script` or `command` server: the project's root. */
  cwd?: string;
  /** Bound on each request to the server: connecting, listing, one tool call (a stdio start: at least 60 s). */
  timeoutMs: number;
  /** The tools the agent may call; absent: every tool the server lists. */
  tools?: string[];
}

/** Reached one of three ways; the engine checked that exactly one is set. */
export function describeServer(server: McpServerWire): string {
  const where = server.url
    ? server.url
    : server.script
    ? `script ${server.script}`
    : `command ${server.command}`;
  return `MCP server '${server.id}' (${where})`;
}
