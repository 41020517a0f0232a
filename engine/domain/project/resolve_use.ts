/**
 * Resolution of `use:` references against a loaded project.
 *
 * @module
 */

import { resolve } from "node:path";
import type { AgentDefinition } from "../agent/definition.ts";
import type { ToolDefinition } from "../tool/definition.ts";
import type { Workflow } from "../workflow/definition.ts";
import type { Project, ResolvedUse } from "./types.ts";
import { parseUse } from "./use_reference.ts";

/**
 * Definitions loaded for `tool(file=…)` / `agent(file=…)`, by absolute path. Kept beside the project rather
 * than in it: they are an index for {@linkcode resolveUse}, not part of what the project declares.
 */
const fileDefinitions = new WeakMap<Project, Map<string, ToolDefinition | AgentDefinition>>();

/** Records the definitions the loader read for `file=` references of `project`. */
export function registerFileDefinitions(
  project: Project,
  definitions: Map<string, ToolDefinition | AgentDefinition>,
): void {
  fileDefinitions.set(project, definitions);
}

/** Tells the two kinds of file definition apart (only a tool has a module to execute). */
export function isToolDefinition(def: ToolDefinition | AgentDefinition): def is ToolDefinition {
  return "executePath" in def;
}

/** The definition `use` names, or `undefined`; ids resolve in the workflow first, then the project. */
export function lookupUse(project: Project, workflow: Workflow, use: string): ResolvedUse | undefined {
  const ref = parseUse(use);
  if (!ref) return undefined;
  if (ref.by === "file") {
    const def = fileDefinitions.get(project)?.get(resolve(workflow.dir, ref.value));
    if (!def || isToolDefinition(def) !== (ref.kind === "tool")) return undefined;
    return isToolDefinition(def) ? { kind: "tool", tool: def } : { kind: "agent", agent: def };
  }
  switch (ref.kind) {
    case "tool": {
      const tool = workflow.tools.get(ref.value) ?? project.tools.get(ref.value);
      return tool && { kind: "tool", tool };
    }
    case "agent": {
      const agent = workflow.agents.get(ref.value) ?? project.agents.get(ref.value);
      return agent && { kind: "agent", agent };
    }
    case "workflow": {
      const target = project.workflows.get(ref.value);
      return target && { kind: "workflow", workflow: target };
    }
  }
}

/**
 * Resolves a task's `use:`. Every reference is checked when the project loads, so on a loaded project this
 * only throws for a `use` string that did not come from it.
 *
 * @example
 * ```ts ignore
 * const used = resolveUse(project, workflow, "tool(id=weather_tool)");
 * if (used.kind === "tool") console.log(used.tool.executePath);
 * ```
 * @throws {RangeError} when `use` names nothing in `workflow` or `project`.
 */
export function resolveUse(project: Project, workflow: Workflow, use: string): ResolvedUse {
  const resolved = lookupUse(project, workflow, use);
  if (!resolved) {
    throw new RangeError(
      `Cannot resolve use ${JSON.stringify(use)} in workflow "${workflow.id}": it names nothing`,
    );
  }
  return resolved;
}
