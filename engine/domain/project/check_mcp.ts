/**
 * Checks of the `mcp:` servers and of agents' references to them: each server says how it is reached in
 * exactly one way, with only the fields of that way; a `script` exists; an agent's `mcp(id=X)` names a
 * declared server. Whether a server is up, and which tools it lists, is asked only when the caller passes
 * `probeMcp` (`compozy validate` does), never when loading to serve: a project must load while its MCP servers
 * are down. A server that cannot be reached is a warning, and so is a selected tool it does not list.
 *
 * @module
 */

import { dirname, resolve } from "node:path";
import { renderValue } from "../../../pkg/tplengine/mod.ts";
import { neverGrantedFor } from "../../../pkg/runtime/grant_paths.ts";
import { checkScriptModule, scriptReadRoots } from "../../../pkg/runtime/import_policy.ts";
import { isProcessControlEnv, PROCESS_CONTROL_WHY } from "../../../pkg/runtime/permissions.ts";
import { ToolFailure } from "../../../pkg/runtime/tool_failure.ts";
import { parseDuration } from "../duration.ts";
import type { McpServerConfig } from "../mcp/schema.ts";
import { parseMcpToolReference } from "../mcp/tool_reference.ts";
import { type Analysis, type DiagnosticList, trusts } from "./analysis.ts";
import { isToolDefinition } from "./resolve_use.ts";
import { didYouMean } from "./suggest.ts";
import { statProblem } from "./yaml_source.ts";
import type { LoadOptions } from "./types.ts";

const WAYS = ["url", "script", "command"] as const;

/** Fields that belong to one way of reaching a server only. */
const FIELDS_OF: Record<string, (typeof WAYS)[number][]> = {
  transport: ["url"],
  headers: ["url"],
  permissions: ["script"],
  args: ["script", "command"],
  env: ["script", "command"],
};

export async function checkMcp(
  analysis: Analysis,
  diagnostics: DiagnosticList,
  opts: LoadOptions,
): Promise<void> {
  const { project } = analysis;
  // Not a list is a schema error of `mcp:` itself, reported already.
  const servers = Array.isArray(project.config.mcp) ? project.config.mcp : [];
  const usable = new Map<string, number>();
  for (const [i, declared] of servers.entries()) {
    // The server indexed under this id (built from its valid values when it has schema errors), unless this
    // entry is a duplicate or not a mapping with an id.
    const server = project.mcp.get(declared?.id);
    if (!server || analysis.mcpIndex.get(server) !== i) continue;
    // A server with schema errors is checked but not probed: what it would be asked with is not all known.
    const consistent = await checkServer(analysis, server, i, diagnostics, opts);
    if (consistent && !analysis.partial.has(server)) usable.set(server.id, i);
  }
  for (const [agent, site] of analysis.sites) {
    if (isToolDefinition(agent)) continue;
    (agent.tools ?? []).forEach((entry, i) => {
      const ref = parseMcpToolReference(entry);
      if (!ref || project.mcp.has(ref.server) || analysis.broken.mcp.has(ref.server)) return;
      const known = project.mcp.size
        ? `its MCP servers: ${[...project.mcp.keys()].join(", ")}`
        : "it declares no mcp: servers";
      diagnostics.error(
        site.source,
        [...site.path, "tools", i],
        `unknown MCP server "${ref.server}": not declared in compozy.yaml's mcp: (${known})${
          didYouMean(ref.server, project.mcp.keys())
        }`,
      );
    });
  }
  if (opts.probeMcp) await probeServers(analysis, usable, opts.probeMcp, opts, diagnostics);
}

/** True when the server's fields are consistent (and so it can be probed). */
async function checkServer(
  analysis: Analysis,
  server: McpServerConfig,
  i: number,
  diagnostics: DiagnosticList,
  opts: LoadOptions,
): Promise<boolean> {
  const source = analysis.projectSource;
  const path = ["mcp", i];
  const ways = WAYS.filter((way) => server[way] !== undefined);
  // A way left out for a schema error is reported there; how many ways the server has is then unknown unless
  // the others already make two.
  const unknownWays = WAYS.some((way) => !trusts(analysis, server, way));
  if (ways.length === 0 && unknownWays) return false;
  if (ways.length !== 1) {
    diagnostics.error(
      source,
      ways.length ? [...path, ways[1]] : path,
      `MCP server "${server.id}" needs exactly one of url, script or command, found ${
        ways.length ? ways.join(" and ") : "none"
      }`,
      ways.length ? "key" : undefined,
    );
    return false;
  }
  const way = ways[0];
  let ok = true;
  for (const [field, allowedWith] of Object.entries(FIELDS_OF)) {
    if (server[field as keyof McpServerConfig] === undefined || allowedWith.includes(way)) continue;
    ok = false;
    diagnostics.error(
      source,
      [...path, field],
      `${field} does not apply to MCP server "${server.id}": it is for ${allowedWith.join(" or ")} servers`,
      "key",
    );
  }
  if (way === "url" && !server.url!.includes("{{") && !/^https?:\/\/[^/]/.test(server.url!)) {
    diagnostics.error(source, [...path, "url"], `expected an http:// or https:// URL, found "${server.url}"`);
    ok = false;
  }
  if (way === "script") ok = await checkScript(analysis, server, i, diagnostics) && ok;
  for (const name of way === "script" ? Object.keys(server.env ?? {}).filter(isProcessControlEnv) : []) {
    diagnostics.error(
      source,
      [...path, "env", name],
      `MCP server "${server.id}" cannot set env ${name}: ${PROCESS_CONTROL_WHY}`,
      "key",
    );
    ok = false;
  }
  if (way === "command" && opts.refuseMcpCommands) {
    diagnostics.error(
      source,
      [...path, "command"],
      `MCP server "${server.id}" runs a command (mcp[${i}].command), refused in a bundle deployed over HTTP: it would run unsandboxed as the server's user; ${opts.refuseMcpCommands}`,
    );
    ok = false;
  }
  return ok;
}

async function checkScript(
  analysis: Analysis,
  server: McpServerConfig,
  i: number,
  diagnostics: DiagnosticList,
): Promise<boolean> {
  const script = resolve(analysis.project.root, server.script!);
  const problem = await statProblem(script);
  if (problem === undefined) {
    // Which files the script may import depends on its read grants: unknown when they had a schema error.
    if (!trusts(analysis, server, "permissions", "read")) return true;
    return await checkScriptImports(analysis, script, server.permissions?.read, i, diagnostics);
  }
  diagnostics.error(
    analysis.projectSource,
    ["mcp", i, "script"],
    `MCP server script ${problem}: ${server.script}`,
  );
  return false;
}

/** The sandbox's check of a script's static graph (red team 8 S4), as the runtime makes it before a start. */
async function checkScriptImports(
  analysis: Analysis,
  script: string,
  read: boolean | readonly string[] | undefined,
  i: number,
  diagnostics: DiagnosticList,
): Promise<boolean> {
  try {
    await checkScriptModule(
      script,
      await neverGrantedFor([analysis.project.root, dirname(script)]),
      scriptReadRoots(script, analysis.project.root, read),
    );
    return true;
  } catch (err) {
    if (!(err instanceof ToolFailure)) throw err;
    diagnostics.error(analysis.projectSource, ["mcp", i, "script"], `${err.code}: ${err.message}`);
    return false;
  }
}

/**
 * Lists the tools of every consistent server (a `command` server is not started: it would run with the
 * user's own rights at validate time); each problem is a warning, since a server may be down while one
 * validates and up when the project runs.
 */
async function probeServers(
  analysis: Analysis,
  usable: Map<string, number>,
  probe: NonNullable<LoadOptions["probeMcp"]>,
  opts: LoadOptions,
  diagnostics: DiagnosticList,
): Promise<void> {
  const { project, projectSource } = analysis;
  const env = { ...project.envFile, ...opts.processEnv ?? readProcessEnv(), ...project.env };
  const listed = new Map<string, string[]>();
  await Promise.all([...usable].map(async ([id, i]) => {
    const server = project.mcp.get(id)!;
    if (server.command !== undefined) return;
    try {
      const rendered = renderValue({ url: server.url, headers: server.headers, env: server.env }, { env });
      const timeoutMs = server.timeout ? parseDuration(server.timeout) : DEFAULT_PROBE_TIMEOUT_MS;
      listed.set(id, await probe({ ...server, ...rendered as object, cwd: project.root, timeoutMs }));
    } catch (error) {
      diagnostics.warning(
        projectSource,
        ["mcp", i],
        `MCP server "${id}" could not be reached to list its tools: ${
          error instanceof Error ? error.message : String(error)
        }`,
      );
    }
  }));
  for (const [agent, site] of analysis.sites) {
    if (isToolDefinition(agent)) continue;
    (agent.tools ?? []).forEach((entry, i) => {
      const ref = parseMcpToolReference(entry);
      const tools = ref?.tool !== undefined ? listed.get(ref.server) : undefined;
      if (!ref?.tool || !tools || tools.includes(ref.tool)) return;
      diagnostics.warning(
        site.source,
        [...site.path, "tools", i],
        `MCP server "${ref.server}" does not list tool "${ref.tool}" (it lists: ${
          tools.join(", ") || "no tools"
        })${didYouMean(ref.tool, tools)}`,
      );
    });
  }
}

/** How long `compozy validate` waits for a server without a `timeout`. */
const DEFAULT_PROBE_TIMEOUT_MS = 10_000;

/** The process environment, or nothing without permission to read all of it. */
function readProcessEnv(): Record<string, string> {
  return Deno.permissions.querySync({ name: "env" }).state === "granted" ? Deno.env.toObject() : {};
}
