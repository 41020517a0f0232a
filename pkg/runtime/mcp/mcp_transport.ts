/**
 * The SDK transport for an MCP server: streamable HTTP or SSE for a `url`, stdio for a process the runtime
 * starts. A `script` server is a Deno process with the Deno permissions its config grants and nothing else
 * (like a tool's sandbox process, and denied the NATS ports whatever its `net` grant); a `command` server is
 * any program and runs with the runtime's own rights, the one thing the runtime cannot confine.
 *
 * @module
 */

import { dirname } from "node:path";
import { SSEClientTransport } from "@modelcontextprotocol/sdk/client/sse.js";
import { getDefaultEnvironment, StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import type { Transport } from "@modelcontextprotocol/sdk/shared/transport.js";
import { denoExecutable } from "../deno_executable.ts";
import { netDenyFlags } from "../net_deny.ts";
import { normalizePermissions, processFlags } from "../permissions.ts";
import type { McpServerWire } from "./mcp_server_wire.ts";

/** What a `script` server's `deno` needs to find its module cache, offline included, beside the SDK's defaults. */
const DENO_CACHE_ENV = ["DENO_DIR", "XDG_CACHE_HOME", "NPM_CONFIG_REGISTRY"];

/** A transport for `server`; a stdio one starts its process when the client connects. */
export function transportFor(server: McpServerWire): Transport {
  if (server.url) {
    const url = new URL(server.url);
    const requestInit = { headers: server.headers ?? {} };
    return server.transport === "sse"
      ? new SSEClientTransport(url, { requestInit })
      : new StreamableHTTPClientTransport(url, { requestInit });
  }
  const { command, args } = server.script ? scriptCommand(server, server.script) : {
    command: server.command!,
    args: server.args ?? [],
  };
  return new StdioClientTransport({
    command,
    args,
    env: { ...getDefaultEnvironment(), ...cacheEnv(), ...server.env },
    cwd: server.cwd,
    // Read by the toolbox and forwarded to the agent's logs (mcp_toolbox.ts).
    stderr: "pipe",
  });
}

/** `deno run` of the script with its grants only: no prompt, no `run`/`ffi`/`sys`, NATS denied. */
export function scriptCommand(server: McpServerWire, script: string): { command: string; args: string[] } {
  // Relative grants read like the script path itself: from compozy.yaml's folder (the working directory).
  const permissions = normalizePermissions(server.permissions, server.cwd ?? dirname(script));
  return {
    command: denoExecutable(),
    args: [
      "run",
      "--no-prompt",
      "--quiet",
      ...processFlags(permissions, []),
      ...netDenyFlags(),
      script,
      ...(server.args ?? []),
    ],
  };
}

function cacheEnv(): Record<string, string> {
  return Object.fromEntries(
    DENO_CACHE_ENV.map((name) => [name, Deno.env.get(name)]).filter((entry): entry is [string, string] =>
      entry[1] !== undefined
    ),
  );
}
