/**
 * What the loader knows about a project beyond the public `Project`: where each definition came from, so
 * that checks can report at the right line, and which ids failed validation, so that a reference to a broken
 * definition is not reported a second time as "unknown".
 *
 * @module
 */

import type { AgentDefinition } from "../agent/definition.ts";
import type { Diagnostic, PathSegment } from "../diagnostics.ts";
import type { McpServerConfig } from "../mcp/schema.ts";
import type { TaskSite } from "../task/walk.ts";
import type { ToolDefinition } from "../tool/definition.ts";
import type { TriggerConfig } from "../trigger/schema.ts";
import type { Workflow } from "../workflow/definition.ts";
import type { Trust } from "./trust.ts";
import type { Project } from "./types.ts";
import { diagnosticAt, type YamlSource } from "./yaml_source.ts";

/** Where a definition is declared. */
export interface Site {
  source: YamlSource;
  path: PathSegment[];
}

export interface LoadedWorkflow {
  workflow: Workflow;
  source: YamlSource;
  /**
   * False for a file without a string `id`, or whose id an earlier file took: it is checked on its own (its
   * errors show in the same run) but is no workflow of the project, so nothing can use or reach it.
   */
  inProject: boolean;
  /** The triggers without schema errors, with their index in `triggers:`. */
  triggers: { trigger: TriggerConfig; index: number }[];
  /** The tasks the checks look at: no schema error of their own or above them, each id once. */
  tasks: TaskSite[];
  /**
   * Tasks left out for schema errors, holding only the references they make from fields without an error
   * (`use`, `action`, `on_success.next`, `on_error.next`): those are still checked. Their `type` is `basic`
   * when they hold a `use`, and absent otherwise.
   */
  brokenTaskReferences: TaskSite[];
  /** Tasks left out for schema errors, as found in the file (their `env` still names env values). */
  brokenTasks: unknown[];
  /** Readable ids of those tasks: a reference to one is not "unknown". */
  brokenTaskIds: ReadonlySet<string>;
  /**
   * False when a task had a schema error: the control flow is then partly unknown, so what depends on all
   * of it (which task can run before which, which can never run) is not concluded.
   */
  complete: boolean;
}

export interface Analysis {
  project: Project;
  projectSource: YamlSource;
  workflows: LoadedWorkflow[];
  /** Definitions read for `tool(file=…)` / `agent(file=…)`, by absolute path. */
  fileDefinitions: Map<string, ToolDefinition | AgentDefinition>;
  /** Declaration site of every tool and agent definition. */
  sites: Map<ToolDefinition | AgentDefinition, Site>;
  /**
   * Tools, agents, models and MCP servers declared with schema errors, built from their valid values so that
   * references to them resolve and the checks of those values still run; each maps to which of its paths
   * (relative to the definition) can be trusted (trust.ts).
   */
  partial: Map<object, Trust>;
  /** The index in compozy.yaml's `mcp:` of each server of `project.mcp`. */
  mcpIndex: Map<McpServerConfig, number>;
  /** Ids (or absolute paths, for `file=`) of definitions that could not be built at all. */
  broken: {
    models: Set<string>;
    mcp: Set<string>;
    files: Set<string>;
    /** Ids read from the text of workflow files that do not parse (unreadable_workflow.ts). */
    workflows: Set<string>;
  };
  /**
   * Where compozy.yaml lists the workflow files whose id is unknown: files that do not parse and whose id could
   * not be read, and files not found (`missing`). A reference to an unknown workflow may name one of them, so
   * it is not reported as unknown (check_references.ts).
   */
  unreadableWorkflows: { path: PathSegment[]; source: string; missing: boolean }[];
}

/**
 * Whether the checks can rely on the value at `path` of `def` (a tool, agent, model or MCP server): false when
 * it, or something inside it, had a schema error and was left out, or when it is missing beside a mapping with
 * an error of its own (a required field missing). A check that would read a left-out value's absence as "none"
 * skips the definition then.
 */
export function trusts(analysis: Analysis, def: object, ...path: PathSegment[]): boolean {
  return analysis.partial.get(def)?.(path) ?? true;
}

/** Collects diagnostics for one run. */
export class DiagnosticList {
  readonly items: Diagnostic[] = [];

  add(...diagnostics: Diagnostic[]): void {
    this.items.push(...diagnostics);
  }

  error(source: YamlSource, path: readonly PathSegment[], message: string, at?: "key" | "value"): void {
    this.items.push(diagnosticAt(source, path, message, { at }));
  }

  warning(source: YamlSource, path: readonly PathSegment[], message: string, at?: "key" | "value"): void {
    this.items.push(diagnosticAt(source, path, message, { severity: "warning", at }));
  }

  get hasErrors(): boolean {
    return this.items.some((d) => d.severity === "error");
  }
}
