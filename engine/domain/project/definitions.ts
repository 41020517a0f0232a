/**
 * Indexing of declared definitions (models, tools, agents) by id, reporting duplicates at the later one.
 *
 * @module
 */

import { type AgentDefinition, toAgentDefinition } from "../agent/definition.ts";
import type { AgentConfig } from "../agent/schema.ts";
import type { Diagnostic, PathSegment } from "../diagnostics.ts";
import { type ToolDefinition, toToolDefinition } from "../tool/definition.ts";
import type { ToolConfig } from "../tool/schema.ts";
import type { Analysis, DiagnosticList, Site } from "./analysis.ts";
import { isMapping, pruneErrors } from "./trust.ts";
import { formatPath, locate, type YamlSource } from "./yaml_source.ts";

/**
 * Indexes `items` (declared at `base` in `source`) by id. An item with schema errors (`isValid` false) is built
 * by `buildPartial` when given and the item is a mapping with a string id; otherwise it is left out and its
 * id, when readable, added to `broken`.
 */
export function indexById<C extends { id: string }, D>(
  items: readonly C[] | undefined,
  source: YamlSource,
  base: PathSegment[],
  what: string,
  opts: {
    diagnostics: DiagnosticList;
    isValid: (path: PathSegment[]) => boolean;
    broken?: Set<string>;
    build: (config: C, path: PathSegment[]) => D;
    buildPartial?: (item: Record<string, unknown> & { id: string }, path: PathSegment[]) => D;
  },
): Map<string, D> {
  const out = new Map<string, D>();
  const firstAt = new Map<string, PathSegment[]>();
  // Not a list is a schema error of the list itself (reported): nothing to index.
  (Array.isArray(items) ? items : []).forEach((item, i) => {
    const path = [...base, i];
    const valid = opts.isValid(path);
    const buildable = valid ||
      (opts.buildPartial !== undefined && isMapping(item) && typeof item.id === "string");
    if (!buildable) {
      if (typeof item?.id === "string") opts.broken?.add(item.id);
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
    out.set(item.id, valid ? opts.build(item, path) : opts.buildPartial!(item, path));
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
 * definition stands so later checks can point at it. One with schema errors is built from its valid fields
 * (see {@linkcode buildDefinition}).
 */
export function indexToolsAndAgents(
  declared: { tools?: readonly ToolConfig[]; agents?: readonly AgentConfig[] },
  source: YamlSource,
  analysis: Analysis,
  common: {
    diagnostics: DiagnosticList;
    isValid: (path: PathSegment[]) => boolean;
    schemaErrors: readonly Diagnostic[];
  },
): { tools: Map<string, ToolDefinition>; agents: Map<string, AgentDefinition> } {
  const { diagnostics, isValid, schemaErrors } = common;
  const build =
    <D extends ToolDefinition | AgentDefinition>(kind: "tool" | "agent") =>
    (item: Record<string, unknown>, path: PathSegment[]): D =>
      buildDefinition(kind, item, { source, path }, schemaErrors, analysis) as D;
  return {
    tools: indexById(declared.tools, source, ["tools"], "tool", {
      diagnostics,
      isValid,
      build: build<ToolDefinition>("tool"),
      buildPartial: build<ToolDefinition>("tool"),
    }),
    agents: indexById(declared.agents, source, ["agents"], "agent", {
      diagnostics,
      isValid,
      build: build<AgentDefinition>("agent"),
      buildPartial: build<AgentDefinition>("agent"),
    }),
  };
}

/**
 * Builds the tool or agent declared at `site` and records where it stands. With schema errors under it, the
 * definition holds only the values without errors (trust.ts {@linkcode pruneErrors}), and `analysis.partial`
 * says which of its paths the checks cannot trust.
 */
export function buildDefinition(
  kind: "tool" | "agent",
  item: Record<string, unknown>,
  site: Site,
  schemaErrors: readonly Diagnostic[],
  analysis: Analysis,
): ToolDefinition | AgentDefinition {
  const { value: fields, trust } = pruneErrors(item, site.path, schemaErrors);
  fields.id = item.id; // a malformed id is reported; it is still the name references use
  const file = site.source.file;
  // Without a valid `execute` the tool has no module (its `executePath` is then the file's folder): the checks
  // that read one ask `trusts(…, "execute")` first.
  const def = kind === "tool"
    ? toToolDefinition({ execute: "", ...fields } as unknown as ToolConfig, file)
    : toAgentDefinition(fields as unknown as AgentConfig, file);
  analysis.sites.set(def, site);
  if (trust) analysis.partial.set(def, trust);
  return def;
}

/**
 * A model or MCP server with schema errors, built from its valid values like a tool or agent (see
 * {@linkcode buildDefinition}): its other checks still run, each asking `trusts` for the values it reads.
 */
export function buildPartialConfig<C>(
  item: Record<string, unknown> & { id: string },
  path: PathSegment[],
  schemaErrors: readonly Diagnostic[],
  analysis: Analysis,
): C {
  const { value, trust } = pruneErrors(item, path, schemaErrors);
  value.id = item.id; // a malformed id is reported; it is still the name references use
  if (trust) analysis.partial.set(value, trust);
  return value as C;
}
