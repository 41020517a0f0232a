/**
 * The MCP servers an agent names, as the runtime needs them (pkg/runtime/mcp/mcp_server_wire.ts): templates
 * in `url`, `headers` and `env` rendered for this task, `script` made absolute, the time-out in milliseconds,
 * and the tools the agent selected (absent: all). Secrets rendered here travel in the AgentExecute
 * definition, which dead letters never keep (pkg/nats/dead_letter_redaction.ts).
 *
 * @module
 */

import { resolve } from "node:path";
import type { TemplateContext } from "../../../pkg/tplengine/mod.ts";
import { TaskFailure } from "../../failure.ts";
import { parseDuration } from "../duration.ts";
import type { Project } from "../project/types.ts";
import { renderField } from "../task/template_scope.ts";
import { mcpSelections } from "./tool_reference.ts";

/** CONFIG.md's default for a tool call, kept for MCP requests. */
const DEFAULT_MCP_TIMEOUT_MS = 60_000;

export function mcpWireServers(
  project: Project,
  agentTools: readonly string[],
  context: TemplateContext,
  taskId: string,
): Record<string, unknown>[] {
  return [...mcpSelections(agentTools)].map(([id, tools]) => {
    const server = project.mcp.get(id);
    if (!server) {
      // The loader refuses unknown servers; this guards a project object built some other way.
      throw new TaskFailure({
        message: `unknown MCP server '${id}'`,
        code: "config_error",
        retryable: false,
      });
    }
    const field = `mcp.${id}`;
    return {
      id,
      url: server.url === undefined
        ? undefined
        : String(renderField(server.url, context, taskId, `${field}.url`)),
      transport: server.transport,
      headers: server.headers && renderField(server.headers, context, taskId, `${field}.headers`),
      script: server.script && resolve(project.root, server.script),
      permissions: server.permissions,
      command: server.command,
      args: server.args,
      env: server.env && renderField(server.env, context, taskId, `${field}.env`),
      cwd: project.root,
      timeoutMs: server.timeout ? parseDuration(server.timeout) : DEFAULT_MCP_TIMEOUT_MS,
      tools,
    };
  });
}
