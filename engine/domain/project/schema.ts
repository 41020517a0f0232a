/**
 * Shape of `compozy.yaml`, the project root.
 *
 * @module
 */

import { z } from "zod";
import { AgentSchema, ModelSchema } from "../agent/schema.ts";
import { envField } from "../config_fields.ts";
import { MAX_ID_LENGTH, PROJECT_NAME_PATTERN } from "../ids.ts";
import { McpServerSchema } from "../mcp/schema.ts";
import { ToolSchema } from "../tool/schema.ts";
import { NatsConfigSchema } from "./nats_config.ts";

export const ProjectSchema = z.strictObject({
  name: z.string().regex(new RegExp(PROJECT_NAME_PATTERN)).max(MAX_ID_LENGTH).describe(
    `Project name; matches [a-z0-9][a-z0-9-]*, at most ${MAX_ID_LENGTH} characters`,
  ).meta({ examples: ["weather-assistant"] }),
  version: z.string().describe("Version of the project").meta({ examples: ["0.1.0"] }).optional(),
  description: z.string().describe("What the project does").optional(),
  author: z.strictObject({
    name: z.string().describe("Author's name"),
    email: z.string().describe("Author's e-mail address").optional(),
    url: z.string().describe("Author's web page").optional(),
  }).describe("Who maintains the project").optional(),
  workflows: z.array(
    z.strictObject({
      source: z.string().min(1).describe("Path of a workflow file, relative to compozy.yaml").meta({
        examples: ["./workflows/weather.yaml"],
      }),
    }),
  ).min(1).describe("Workflow files of the project"),
  env: envField().describe("Environment values merged under every workflow's env").optional(),
  env_file: z.string().describe(
    "Env file read for `.env.NAME` (default .env beside compozy.yaml; may be missing)",
  )
    .optional(),
  models: z.array(ModelSchema).describe("Named models agents refer to with `$model`").optional(),
  tools: z.array(ToolSchema).describe("Project-wide tools, usable from every workflow").optional(),
  agents: z.array(AgentSchema).describe("Project-wide agents, usable from every workflow").optional(),
  mcp: z.array(McpServerSchema).describe(
    "Model Context Protocol servers; an agent's `tools:` names them as mcp(id=X)",
  ).optional(),
  nats: NatsConfigSchema,
}).describe("A Compozy project (compozy.yaml)").meta({ id: "project" });

export type ProjectConfig = z.infer<typeof ProjectSchema>;
