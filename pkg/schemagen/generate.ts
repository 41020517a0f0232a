/**
 * Generates the JSON Schemas in `schemas/` from the zod schemas the config types come from.
 *
 * @module
 */

import { z } from "zod";
import { AgentSchema } from "../../engine/domain/agent/schema.ts";
import { ProjectSchema } from "../../engine/domain/project/schema.ts";
import { ToolSchema } from "../../engine/domain/tool/schema.ts";
import { WorkflowSchema } from "../../engine/domain/workflow/schema.ts";
import { dispatchUnions, type JsonSchema } from "./union_dispatch.ts";

/** File name in `schemas/` → the zod schema it is generated from. */
export const SCHEMA_SOURCES = {
  "compozy.json": { schema: ProjectSchema, title: "Compozy project (compozy.yaml)" },
  "workflow.json": { schema: WorkflowSchema, title: "Compozy workflow" },
  "agent.json": { schema: AgentSchema, title: "Compozy agent" },
  "tool.json": { schema: ToolSchema, title: "Compozy tool" },
} as const;

export type SchemaFileName = keyof typeof SCHEMA_SOURCES;

/** Builds every schema file; the result maps a file name to its JSON Schema. */
export function generateSchemas(): Record<SchemaFileName, JsonSchema> {
  const out = {} as Record<SchemaFileName, JsonSchema>;
  for (const [file, { schema, title }] of Object.entries(SCHEMA_SOURCES)) {
    const generated = z.toJSONSchema(schema, {
      target: "draft-2020-12",
      io: "input",
      override: ({ jsonSchema }) => {
        // zod states that record keys are strings and integers are safe integers; YAML keys already are
        // strings and the bound is noise in an editor's hover text.
        delete jsonSchema.propertyNames;
        if (jsonSchema.maximum === Number.MAX_SAFE_INTEGER) delete jsonSchema.maximum;
      },
    }) as JsonSchema;
    out[file as SchemaFileName] = dispatchUnions(inlineRoot(generated, title));
  }
  return out;
}

/** Serialises a schema the way it is stored in `schemas/`. */
export function serializeSchema(schema: JsonSchema): string {
  return JSON.stringify(schema, null, 2) + "\n";
}

/**
 * zod emits `{ $ref: "#/$defs/workflow" }` as the root when the schema has an id; editors show a root's own
 * description and title better, so the root definition is moved up and references to it point at `#`.
 */
function inlineRoot(schema: JsonSchema, title: string): JsonSchema {
  const defs = (schema.$defs ?? {}) as Record<string, JsonSchema>;
  const ref = typeof schema.$ref === "string" ? schema.$ref : undefined;
  const rootName = ref?.startsWith("#/$defs/") ? ref.slice("#/$defs/".length) : undefined;
  if (!rootName || !defs[rootName]) return { $schema: schema.$schema, title, ...schema };
  const { [rootName]: root, ...otherDefs } = defs;
  const text = JSON.stringify({ ...root, $defs: otherDefs }).replaceAll(`"#/$defs/${rootName}"`, '"#"');
  const { $defs, ...body } = JSON.parse(text) as JsonSchema;
  return {
    $schema: schema.$schema,
    title,
    ...body,
    ...(Object.keys($defs as object).length > 0 ? { $defs } : {}),
  };
}
