/**
 * Indexing of declared definitions (models, tools, agents) by id, reporting duplicates at the later one.
 *
 * @module
 */

import { type AgentDefinition, toAgentDefinition } from "../agent/definition.ts";
import type { AgentConfig } from "../agent/schema.ts";
import type { PathSegment } from "../diagnostics.ts";
import { type ToolDefinition, toToolDefinition } from "../tool/definition.ts";
import type { ToolConfig } from "../tool/schema.ts";
import type { Analysis, DiagnosticList } from "./analysis.ts";
import { formatPath, locate, type YamlSource } from "./yaml_source.ts";

/**
 * Indexes `items` (declared at `base` in `source`) by id. Items with schema errors (`isValid` false) are
 * left out and their ids added to `broken`.
 */
export function indexById<C extends { id: string }, D>(
  items: readonly C[] | undefined,
  source: YamlSource,
  base: PathSegment[],
  what: string,
  opts: {
    diagnostics: DiagnosticList;
    isValid: (path: PathSegment[]) => boolean;
    broken: Set<string>;
    build: (config: C, path: PathSegment[]) => D;
  },
): Map<string, D> {
  const out = new Map<string, D>();
  const firstAt = new Map<string, PathSegment[]>();
  // Not a list is a schema error of the list itself (reported): nothing to index.
  (Array.isArray(items) ? items : []).forEach((item, i) => {
    const path = [...base, i];
    if (!opts.isValid(path)) {
      if (typeof item?.id === "string") opts.broken.add(item.id);
      return;
    }
    const first = firstAt.get(item.id);
    if (first) {
      const { line } = locate(source, [...first, "id"]);
      opts.diagnostics.error(
        source,
        [...path, "id"],
        `duplicate ${what} id "${item.id}" (first declared at line ${line})`,
      );
      return;
    }
    firstAt.set(item.id, path);
    out.set(item.id, opts.build(item, path));
  });
  return out;
}

/** Whether none of `errors` concern the value at `path` or anything inside it. */
export function validUnder(errors: readonly { path: string }[]): (path: PathSegment[]) => boolean {
  return (path) => {
    const prefix = formatPath(path);
    return !errors.some((e) =>
      e.path === prefix || e.path.startsWith(`${prefix}.`) || e.path.startsWith(`${prefix}[`)
    );
  };
}

/**
 * A file's top-level fields without those with schema errors, so that checks read only what has its schema's
 * shape; `id` and the lists in `itemLists` (when they are lists) are kept, their items checked one by one.
 */
export function trustedFields(
  raw: Record<string, unknown>,
  isValid: (path: PathSegment[]) => boolean,
  itemLists: ReadonlySet<string>,
): Record<string, unknown> {
  return Object.fromEntries(
    Object.entries(raw).filter(([key, value]) =>
      key === "id" || isValid([key]) || (itemLists.has(key) && Array.isArray(value))
    ),
  );
}

/**
 * Indexes the `tools:` and `agents:` a file declares (compozy.yaml or a workflow), recording where each
 * definition stands so later checks can point at it.
 */
export function indexToolsAndAgents(
  declared: { tools?: readonly ToolConfig[]; agents?: readonly AgentConfig[] },
  source: YamlSource,
  analysis: Analysis,
  common: { diagnostics: DiagnosticList; isValid: (path: PathSegment[]) => boolean },
): { tools: Map<string, ToolDefinition>; agents: Map<string, AgentDefinition> } {
  return {
    tools: indexById(declared.tools, source, ["tools"], "tool", {
      ...common,
      broken: analysis.broken.tools,
      build: (tool, path) => {
        const def = toToolDefinition(tool, source.file);
        analysis.sites.set(def, { source, path });
        return def;
      },
    }),
    agents: indexById(declared.agents, source, ["agents"], "agent", {
      ...common,
      broken: analysis.broken.agents,
      build: (agent, path) => {
        const def = toAgentDefinition(agent, source.file);
        analysis.sites.set(def, { source, path });
        return def;
      },
    }),
  };
}
