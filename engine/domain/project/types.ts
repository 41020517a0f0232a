/**
 * The loaded project: what the engine and the server run from.
 *
 * @module
 */

import type { AgentDefinition } from "../agent/definition.ts";
import type { ModelConfig } from "../agent/schema.ts";
import type { Diagnostic } from "../diagnostics.ts";
import type { McpServerConfig } from "../mcp/schema.ts";
import type { ToolDefinition } from "../tool/definition.ts";
import type { Workflow } from "../workflow/definition.ts";
import type { ProjectConfig } from "./schema.ts";

export interface Project {
  /** Absolute path of the project directory. */
  root: string;
  /** Absolute path of `compozy.yaml`. */
  file: string;
  config: ProjectConfig;
  /** Problems that do not stop the project from running (e.g. a task that can never run). */
  warnings: Diagnostic[];
  /** The project's `env:` map. */
  env: Record<string, string>;
  /** The parsed env file (`env_file`, default `.env` beside compozy.yaml); empty when there is none. */
  envFile: Record<string, string>;
  models: Map<string, ModelConfig>;
  workflows: Map<string, Workflow>;
  /** Project-level tools. */
  tools: Map<string, ToolDefinition>;
  /** Project-level agents. */
  agents: Map<string, AgentDefinition>;
  /** The `mcp:` servers agents may take tools from. */
  mcp: Map<string, McpServerConfig>;
}

/** What a task's `use:` names. */
export type ResolvedUse =
  | { kind: "tool"; tool: ToolDefinition }
  | { kind: "agent"; agent: AgentDefinition }
  | { kind: "workflow"; workflow: Workflow };

/** Options of loading and checking a project (kept here, not in the loader, so checks need not import it). */
export interface LoadOptions {
  /** The process environment, for the check that every `.env.NAME` is set somewhere; default `Deno.env`. */
  processEnv?: Record<string, string>;
  /**
   * Checks the code of the tools whose module exists (import policy, types); `compozy validate` passes one.
   * Loading to serve does not: it costs a `deno` process per tool, and the runtime checks the imports anyway.
   */
  checkToolCode?: (tools: ToolDefinition[]) => Promise<Diagnostic[]>;
  /**
   * Connects to an MCP server and lists its tools; `compozy validate` passes one. Loading to serve does not:
   * a project must load while its MCP servers are down. Rejects when the server cannot be reached.
   */
  probeMcp?: (server: McpProbe) => Promise<string[]>;
  /**
   * Refuses MCP `command:` servers, which run unsandboxed with the server's rights: set for a bundle received
   * over HTTP (a deployment) unless the server's operator allows them. The text says how to allow them.
   */
  refuseMcpCommands?: string;
}

/** An MCP server ready to be reached: its config with `url`, `headers` and `env` rendered. */
export interface McpProbe extends McpServerConfig {
  /** The folder a `script` or `command` server runs in, and `script` resolves against: the project's root. */
  cwd: string;
  timeoutMs: number;
}
