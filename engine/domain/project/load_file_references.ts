/**
 * Loads the definitions named by `tool(file=…)` and `agent(file=…)`, each file once however often it is used.
 *
 * @module
 */

import { resolve } from "node:path";
import { toAgentDefinition } from "../agent/definition.ts";
import type { AgentConfig } from "../agent/schema.ts";
import { toToolDefinition } from "../tool/definition.ts";
import type { ToolConfig } from "../tool/schema.ts";
import type { Analysis, DiagnosticList } from "./analysis.ts";
import { validateSchema } from "./schema_validation.ts";
import { parseUse } from "./use_reference.ts";
import { readYamlFile } from "./yaml_source.ts";

export async function loadFileReferences(analysis: Analysis, diagnostics: DiagnosticList): Promise<void> {
  const missing = new Set<string>();
  for (const { workflow, source, tasks } of analysis.workflows) {
    for (const site of tasks) {
      if (site.task.type !== "basic") continue;
      const ref = parseUse(site.task.use);
      if (!ref || ref.by !== "file" || ref.kind === "workflow") continue;
      const file = resolve(workflow.dir, ref.value);
      if (missing.has(file)) {
        diagnostics.error(source, [...site.path, "use"], `${ref.kind} file not found: ${ref.value}`);
        continue;
      }
      if (analysis.fileDefinitions.has(file) || analysis.broken.files.has(file)) continue;
      const read = await readYamlFile(file);
      if (read.kind === "missing") {
        missing.add(file);
        diagnostics.error(source, [...site.path, "use"], `${ref.kind} file not found: ${ref.value}`);
        continue;
      }
      if (read.kind === "invalid") {
        analysis.broken.files.add(file);
        diagnostics.add(...read.diagnostics);
        continue;
      }
      const errors = validateSchema(ref.kind, read.source);
      if (errors.length > 0) {
        analysis.broken.files.add(file);
        diagnostics.add(...errors);
        continue;
      }
      const def = ref.kind === "tool"
        ? toToolDefinition(read.source.value as ToolConfig, file)
        : toAgentDefinition(read.source.value as AgentConfig, file);
      analysis.fileDefinitions.set(file, def);
      analysis.sites.set(def, { source: read.source, path: [] });
    }
  }
}
