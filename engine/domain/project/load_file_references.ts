/**
 * Loads the definitions named by `tool(file=…)` and `agent(file=…)`, each file once however often it is used.
 *
 * @module
 */

import { resolve } from "node:path";
import type { Analysis, DiagnosticList } from "./analysis.ts";
import { buildDefinition } from "./definitions.ts";
import { isMapping } from "./trust.ts";
import { validateSchema } from "./schema_validation.ts";
import { parseUse } from "./use_reference.ts";
import { notThere, readYamlFile } from "./yaml_source.ts";

export async function loadFileReferences(analysis: Analysis, diagnostics: DiagnosticList): Promise<void> {
  // The file's message, once per file.
  const missing = new Map<string, string>();
  for (const { workflow, source, tasks, brokenTaskReferences } of analysis.workflows) {
    for (const site of [...tasks, ...brokenTaskReferences]) {
      if (site.task.type !== "basic") continue;
      const ref = parseUse(site.task.use);
      if (!ref || ref.by !== "file" || ref.kind === "workflow") continue;
      const file = resolve(workflow.dir, ref.value);
      const known = missing.get(file);
      if (known !== undefined) {
        diagnostics.error(source, [...site.path, "use"], known);
        continue;
      }
      if (analysis.fileDefinitions.has(file) || analysis.broken.files.has(file)) continue;
      const read = await readYamlFile(file);
      if (read.kind === "missing") {
        const message = notThere(read, `${ref.kind} file`, ref.value);
        missing.set(file, message);
        diagnostics.error(source, [...site.path, "use"], message);
        continue;
      }
      if (read.kind === "invalid") {
        analysis.broken.files.add(file);
        diagnostics.add(...read.diagnostics);
        continue;
      }
      const errors = validateSchema(ref.kind, read.source);
      diagnostics.add(...errors);
      const value = read.source.value;
      // A definition with schema errors is built from its valid fields (definitions.ts), so a task using it
      // is still checked against them; one that is not even a mapping with an id is left out.
      if (!isMapping(value) || typeof value.id !== "string") {
        analysis.broken.files.add(file);
        continue;
      }
      const at = { source: read.source, path: [] };
      analysis.fileDefinitions.set(file, buildDefinition(ref.kind, value, at, errors, analysis));
    }
  }
}
