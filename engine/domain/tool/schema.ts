/**
 * Shape of a tool definition: a TypeScript module the runtime runs in a sandboxed worker.
 *
 * @module
 */

import { z } from "zod";
import { durationField, envField, idField, jsonSchemaField } from "../config_fields.ts";

const accessList = (what: string, example: string) =>
  z.union([z.boolean(), z.array(z.string())]).describe(
    `${what}: false (default), true for all, or a list`,
  ).meta({ examples: [[example], false] });

/** Deno permissions granted to the tool's worker; everything is denied unless listed. */
export const ToolPermissionsSchema = z.strictObject({
  net: accessList("Hosts the tool may reach", "api.weather.example").optional(),
  read: accessList("Paths the tool may read", "./data").optional(),
  write: accessList("Paths the tool may write", "./out").optional(),
  env: z.array(z.string()).describe(
    "Environment variable names the tool may read; reading any other name is a permission error",
  ).meta({ examples: [["WEATHER_KEY"]] }).optional(),
}).describe("Sandbox permissions of the tool (default: none)").meta({ id: "tool_permissions" });

/** A tool as declared in `tools:` or in its own file for `use: tool(file=...)`. */
export const ToolSchema = z.strictObject({
  id: idField("Tool id, unique in the file that declares it"),
  execute: z.string().min(1).describe(
    "Path of the TypeScript module, relative to this file; it exports `default` (or `run`) `(input, ctx) => output`",
  ).meta({ examples: ["./tools/weather.ts"] }),
  description: z.string().describe("What the tool does; agents show it to the model").optional(),
  input: jsonSchemaField("the tool's input").optional(),
  output: jsonSchemaField("the tool's output").optional(),
  timeout: durationField("Time limit of one call (default 60s)").optional(),
  permissions: ToolPermissionsSchema.optional(),
  env: envField().optional(),
}).describe("A tool: a TypeScript module run in a sandboxed worker").meta({ id: "tool" });

export type ToolConfig = z.infer<typeof ToolSchema>;
export type ToolPermissions = z.infer<typeof ToolPermissionsSchema>;
