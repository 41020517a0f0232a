/**
 * The tools of one agent call behind one `callTool`: the agent's own tools, run in the sandbox, and the tools
 * of the MCP servers it names (mcp/mcp_toolbox.ts). The agent loop sees one list and never learns which is
 * which; both fail the same way towards the model (a rejected call is an error result it reads).
 *
 * @module
 */

import type { AgentCall, AgentToolSpec } from "./agent/mod.ts";
import type { McpServerWire } from "./mcp/mcp_server_wire.ts";
import type { McpToolbox, McpToolboxOptions } from "./mcp/mcp_toolbox.ts";

export interface AgentTools {
  specs: AgentToolSpec[];
  callTool: AgentCall["callTool"];
  /** Ends the MCP connections (and stdio server processes); never throws. */
  close(): Promise<void>;
}

/**
 * @throws {AgentFailure} `agent_mcp_unavailable` or `agent_mcp_invalid` when an MCP server cannot be used.
 */
export async function openAgentTools(
  own: AgentToolSpec[],
  runOwn: AgentCall["callTool"],
  mcpServers: McpServerWire[],
  options: Omit<McpToolboxOptions, "reserved">,
): Promise<AgentTools> {
  // The MCP client (its SDK) loads for the first agent that names an MCP server, not at the runtime's start.
  const toolbox: McpToolbox | undefined = mcpServers.length
    ? await (await import("./mcp/mcp_toolbox.ts")).openMcpToolbox(mcpServers, {
      ...options,
      reserved: own.map((tool) => tool.id),
    })
    : undefined;
  return {
    specs: [...own, ...toolbox?.tools ?? []],
    callTool: (toolId, input, ref) =>
      toolbox?.has(toolId) ? toolbox.call(toolId, input, ref.key) : runOwn(toolId, input, ref),
    close: async () => await toolbox?.close(),
  };
}
