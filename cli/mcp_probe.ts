/**
 * `compozy validate`'s look at the project's MCP servers: connect as the runtime would, list the tools, and
 * disconnect (a `script` server's process ends). Loading to serve never does this.
 *
 * @module
 */

import { resolve } from "node:path";
import type { McpProbe } from "../engine/domain/project/mod.ts";
import { openMcpToolbox } from "../pkg/runtime/mcp/mcp_toolbox.ts";

/**
 * The names of the tools `server` lists (those a model can take).
 *
 * @throws {AgentFailure} `agent_mcp_unavailable` or `agent_mcp_invalid`, saying why.
 */
export async function listMcpTools(server: McpProbe): Promise<string[]> {
  const toolbox = await openMcpToolbox([{
    ...server,
    script: server.script && resolve(server.cwd, server.script),
    tools: undefined,
  }], { maxOutputBytes: 0 });
  await toolbox.close();
  return toolbox.tools.map((tool) => tool.id);
}
