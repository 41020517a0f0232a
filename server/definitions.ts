/**
 * Definitions as the API shows them: the loaded config with file paths relative to the project and with
 * secrets redacted (a literal `secret`, `api_key` or `env` value never leaves the server; templates such as
 * `{{ .env.KEY }}` are shown, since they name a variable, not its value).
 *
 * @module
 */
import { Cron } from "croner";
import { relative } from "node:path";
import type { AgentDefinition } from "../engine/domain/agent/definition.ts";
import type { Project } from "../engine/domain/project/types.ts";
import type { ToolDefinition } from "../engine/domain/tool/definition.ts";
import type { Workflow } from "../engine/domain/workflow/definition.ts";
import { ApiError } from "./api_error.ts";

export type Definition = Record<string, unknown>;
export type DefinitionKind = "task" | "tool" | "agent";

const REDACTED = "[redacted]";
const SECRET_KEYS = new Set(["secret", "api_key"]);

export function workflowSummary(project: Project, workflow: Workflow): Definition {
  return {
    id: workflow.id,
    version: workflow.config.version ?? null,
    description: workflow.config.description ?? null,
    file: relative(project.root, workflow.file),
    input_schema: workflow.config.config?.input ?? null,
    triggers: withNextRuns(redact(workflow.config.triggers ?? []) as Definition[]),
    tasks: workflow.config.tasks.length,
  };
}

export function workflowDetail(project: Project, workflow: Workflow): Definition {
  return {
    ...(redact(workflow.config) as Definition),
    file: relative(project.root, workflow.file),
    input_schema: workflow.config.config?.input ?? null,
  };
}

/** Every definition of a kind, each with the workflow that declares it (null for project-level ones). */
export function listDefinitions(project: Project, kind: DefinitionKind): Definition[] {
  const items: Definition[] = [];
  if (kind !== "task") {
    const projectLevel = kind === "tool" ? project.tools : project.agents;
    for (const def of projectLevel.values()) items.push(present(project, kind, def, null));
  }
  for (const workflow of project.workflows.values()) {
    const own = kind === "task" ? workflow.tasks : kind === "tool" ? workflow.tools : workflow.agents;
    for (const def of own.values()) items.push(present(project, kind, def, workflow.id));
  }
  return items;
}

/**
 * One definition by id. Ids are unique per file, so the same id may exist in several workflows:
 * `workflowId` picks one, and without it an id found more than once is a 409 listing where it is.
 */
export function findDefinition(
  project: Project,
  kind: DefinitionKind,
  id: string,
  workflowId?: string,
): Definition {
  const matches = listDefinitions(project, kind).filter((d) =>
    d.id === id && (workflowId === undefined || d.workflow_id === workflowId)
  );
  if (matches.length === 0) {
    const where = workflowId ? ` in workflow '${workflowId}'` : "";
    throw new ApiError(404, `${kind}_not_found`, `Unknown ${kind} '${id}'${where}`, [{ id }]);
  }
  if (matches.length > 1) {
    throw new ApiError(
      409,
      "ambiguous_id",
      `Several workflows declare ${kind} '${id}'; add ?workflow_id= to choose one`,
      matches.map((m) => ({ workflow_id: m.workflow_id })),
    );
  }
  return matches[0];
}

function present(
  project: Project,
  kind: DefinitionKind,
  def: unknown,
  workflowId: string | null,
): Definition {
  const shown = redact(def) as Definition;
  if (kind !== "task") {
    const located = def as ToolDefinition | AgentDefinition;
    shown.file = relative(project.root, located.file);
    shown.line = declarationLine(
      project,
      located.file,
      kind === "tool" ? "tools" : "agents",
      String(shown.id),
    );
    if ("executePath" in located) {
      delete shown.executePath;
      shown.execute_path = relative(project.root, located.executePath);
    }
  }
  return { ...shown, workflow_id: workflowId };
}

const fileLines = new WeakMap<Project, Map<string, string[] | null>>();

/**
 * The 1-based line where `id` is declared in `file` (under its `tools:` or `agents:` key, or anywhere in a file
 * of its own), or null when the file cannot be read (e.g. a deployed bundle). The loader keeps no positions,
 * so the file is read once per loaded project and searched.
 */
function declarationLine(project: Project, file: string, section: string, id: string): number | null {
  let cache = fileLines.get(project);
  if (!cache) fileLines.set(project, cache = new Map());
  if (!cache.has(file)) {
    try {
      cache.set(file, Deno.readTextFileSync(file).split("\n"));
    } catch {
      cache.set(file, null);
    }
  }
  const lines = cache.get(file);
  if (!lines) return null;
  const escaped = id.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  const idLine = new RegExp(`^\\s*(-\\s*)?(\\{\\s*)?id:\\s*["']?${escaped}["']?\\s*(,|\\}|#|$)`);
  const start = Math.max(0, lines.findIndex((l) => l.startsWith(`${section}:`)));
  for (let i = start; i < lines.length; i++) if (idLine.test(lines[i])) return i + 1;
  return null;
}

/**
 * Schedule triggers with their next tick (`next_run_at`, UTC as the schedule runner reads cron), so that a
 * reader sees when the workflow next starts without evaluating cron.
 */
function withNextRuns(triggers: Definition[]): Definition[] {
  return triggers.map((trigger) => {
    const cron = (trigger.config as { cron?: unknown } | undefined)?.cron;
    if (trigger.type !== "schedule" || typeof cron !== "string") return trigger;
    try {
      return {
        ...trigger,
        next_run_at: new Cron(cron, { timezone: "UTC" }).nextRun()?.toISOString() ?? null,
      };
    } catch (e) {
      // An expression croner refuses is shown with its reason rather than failing the whole list.
      return { ...trigger, next_run_at: null, next_run_error: (e as Error).message };
    }
  });
}

/** A deep copy with secret values replaced. */
export function redact(value: unknown, key?: string): unknown {
  if (typeof value === "string") {
    return key !== undefined && SECRET_KEYS.has(key) && !value.includes("{{") ? REDACTED : value;
  }
  if (Array.isArray(value)) return value.map((item) => redact(item));
  if (value instanceof Map) return redact(Object.fromEntries(value));
  if (value && typeof value === "object") {
    return Object.fromEntries(
      Object.entries(value).map(([k, v]) => [k, k === "env" ? redactEnv(v) : redact(v, k)]),
    );
  }
  return value;
}

function redactEnv(env: unknown): unknown {
  if (!env || typeof env !== "object" || Array.isArray(env)) return env;
  return Object.fromEntries(
    Object.entries(env).map(([k, v]) => [k, typeof v === "string" && v.includes("{{") ? v : REDACTED]),
  );
}
