/**
 * Turns a validated workflow file into a `Workflow`: normalises task types, indexes tasks, tools and agents.
 *
 * @module
 */

import { dirname } from "node:path";
import type { TaskConfig } from "../task/schema.ts";
import { collectTaskSites } from "../task/walk.ts";
import type { Workflow } from "../workflow/definition.ts";
import type { WorkflowConfig } from "../workflow/schema.ts";
import type { Analysis, DiagnosticList, LoadedWorkflow } from "./analysis.ts";
import { indexToolsAndAgents } from "./definitions.ts";
import { locate, type YamlSource } from "./yaml_source.ts";

/** Builds the workflow of a file that passed schema validation. */
export function buildWorkflow(
  source: YamlSource,
  analysis: Analysis,
  diagnostics: DiagnosticList,
): LoadedWorkflow {
  const config = source.value as WorkflowConfig;
  const sites = collectTaskSites(config.tasks);
  const tasks = new Map<string, TaskConfig>();
  const firstLine = new Map<string, number>();
  for (const site of sites) {
    // A task without `type` is basic; the loaded config says so explicitly.
    (site.task as { type?: string }).type ??= "basic";
    const id = site.task.id;
    if (tasks.has(id)) {
      diagnostics.error(
        source,
        [...site.path, "id"],
        `duplicate task id "${id}" (first declared at line ${firstLine.get(id)})`,
      );
      continue;
    }
    tasks.set(id, site.task);
    firstLine.set(id, locate(source, [...site.path, "id"]).line);
  }
  const common = { diagnostics, isValid: () => true };
  const workflow: Workflow = {
    id: config.id,
    file: source.file,
    dir: dirname(source.file),
    config,
    ...indexToolsAndAgents(config, source, analysis, common),
    tasks,
  };
  // A duplicate is reported above; the checks that follow see each id once.
  return { workflow, source, tasks: sites.filter((site) => tasks.get(site.task.id) === site.task) };
}
