/**
 * Shape of `mcp:` in compozy.yaml: Model Context Protocol servers whose tools agents may call. A server is
 * reached one of three ways: a `url` (streamable HTTP, or SSE with `transport: sse`), a `script` (a Deno
 * module the runtime runs with the `permissions` given, like a tool), or a `command` (any program, started by
 * the runtime with the runtime's own rights; see docs/agents.md).
 *
 * @module
 */

import { z } from "zod";
import { durationField, envField, idField } from "../config_fields.ts";
import { ToolPermissionsSchema } from "../tool/schema.ts";

export const MCP_TRANSPORTS = ["streamable-http", "sse"] as const;

/**
 * An MCP server in the project's `mcp:` list. Exactly one of `url`, `script` and `command`, and the fields that
 * go with it: checked by engine/domain/project/check_mcp.ts (JSON Schema states no such rule readably).
 */
export const McpServerSchema = z.strictObject({
  id: idField("MCP server id, named by an agent's `tools:` as mcp(id=X)"),
  description: z.string().describe("What the server offers").optional(),
  url: z.string().min(1).describe("Endpoint of a remote server; may be a template").meta({
    examples: ["http://127.0.0.1:8931/mcp"],
  }).optional(),
  transport: z.enum(MCP_TRANSPORTS).describe(
    "How to talk to `url`: streamable-http (default) or sse (the older HTTP+SSE transport)",
  ).optional(),
  headers: z.record(z.string(), z.string()).describe(
    "HTTP headers sent to `url`; values may be templates such as Bearer {{ .env.DOCS_TOKEN }}",
  ).meta({ examples: [{ Authorization: "Bearer {{ .env.DOCS_TOKEN }}" }] }).optional(),
  script: z.string().min(1).describe(
    "A Deno module that serves MCP on stdio, relative to compozy.yaml; run with `permissions` only",
  ).meta({ examples: ["./mcp/files.ts"] }).optional(),
  permissions: ToolPermissionsSchema.describe(
    "Deno permissions of a `script` server (default: none); not allowed with `url` or `command`",
  ).optional(),
  command: z.string().min(1).describe(
    "A program that serves MCP on stdio; it runs with the runtime's own rights, NOT in the sandbox",
  ).meta({ examples: ["npx"] }).optional(),
  args: z.array(z.string()).describe("Arguments of `command` or of `script`").optional(),
  env: envField().describe(
    "Environment of a `command` or `script` server (values may be templates); a script reads only the names its permissions list",
  ).optional(),
  timeout: durationField(
    "Time limit of each request to the server: connecting, listing tools, one call (default 60s)",
  )
    .optional(),
}).describe("A Model Context Protocol server whose tools agents may call").meta({
  id: "mcp_server",
  examples: [
    {
      id: "docs",
      url: "http://127.0.0.1:8931/mcp",
      headers: { Authorization: "Bearer {{ .env.DOCS_TOKEN }}" },
    },
    { id: "files", script: "./mcp/files.ts", permissions: { read: ["./data"] } },
  ],
});

export type McpServerConfig = z.infer<typeof McpServerSchema>;
