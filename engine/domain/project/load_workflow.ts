/**
 * Turns a workflow file into a `Workflow`: normalises task types, indexes tasks, tools and agents.
 *
 * A file with schema errors is loaded as far as it can be trusted (CONFIG.md: one run reports every error):
 * a task with an error of its own is left out of the checks, but its id, when readable, still counts for
 * duplicates and for references to it, and the references it makes from fields without an error (`use`,
 * `action`, `on_success.next`, `on_error.next`) are still checked; a trigger with an error is left out of the checks of triggers; any
 * other workflow field with an error is left out of the config the checks see. A task's error inside one of
 * its inline tasks is that inline task's, not its parent's.
 *
 * @module
 */

import { dirname } from "node:path";
import type { Diagnostic, PathSegment } from "../diagnostics.ts";
import { TASK_TYPES, type TaskConfig } from "../task/schema.ts";
import type { TaskRole, TaskSite } from "../task/walk.ts";
import type { TriggerConfig } from "../trigger/schema.ts";
import type { Workflow } from "../workflow/definition.ts";
import type { WorkflowConfig } from "../workflow/schema.ts";
import type { Analysis, DiagnosticList, LoadedWorkflow } from "./analysis.ts";
import { indexToolsAndAgents, trustedFields, validUnder } from "./definitions.ts";
import { isMapping } from "./trust.ts";
import { parseUse } from "./use_reference.ts";
import { formatPath, locate, type YamlSource } from "./yaml_source.ts";

/**
 * Fields holding lists whose items are checked one by one (a bad item leaves the others usable). `triggers`
 * with an error goes whole from the config: the checks read the valid ones, with their index, from
 * `LoadedWorkflow.triggers`.
 */
const ITEM_LISTS = new Set(["tasks", "tools", "agents"]);

/**
 * Builds the workflow of a file given its schema errors; `undefined` when the file is not a mapping. A file
 * without a string `id` is checked as `fallbackId` (its file name) and left out of the project.
 */
export function buildWorkflow(
  source: YamlSource,
  schemaErrors: readonly Diagnostic[],
  analysis: Analysis,
  diagnostics: DiagnosticList,
  fallbackId: string,
): LoadedWorkflow | undefined {
  const raw = source.value;
  if (!isMapping(raw)) return undefined;
  const hasId = typeof raw.id === "string";
  const isValid = validUnder(schemaErrors);
  const config = trustedFields(raw, isValid, ITEM_LISTS) as unknown as WorkflowConfig;
  const walk = walkTasks(raw.tasks, schemaErrors);
  const tasks = new Map<string, TaskConfig>();
  const firstLine = new Map<string, number>();
  const kept: TaskSite[] = [];
  const referencing: TaskSite[] = [];
  for (const slot of walk.slots) {
    if (slot.id === undefined) continue;
    const first = firstLine.get(slot.id);
    if (first !== undefined) {
      diagnostics.error(
        source,
        [...slot.path, "id"],
        `duplicate task id "${slot.id}" (first declared at line ${first})`,
      );
      continue;
    }
    firstLine.set(slot.id, locate(source, [...slot.path, "id"]).line);
    if (slot.site) {
      tasks.set(slot.id, slot.site.task);
      kept.push(slot.site);
    } else {
      const references = readableReferences(slot, isValid);
      if (references) referencing.push(references);
    }
  }
  const brokenTaskIds = new Set(
    walk.slots.filter((s) => !s.site && s.id !== undefined && !tasks.has(s.id)).map((s) => s.id!),
  );
  const workflow: Workflow = {
    id: hasId ? raw.id as string : fallbackId,
    file: source.file,
    dir: dirname(source.file),
    config,
    ...indexToolsAndAgents(config, source, analysis, { diagnostics, isValid, schemaErrors }),
    tasks,
  };
  // A duplicate is reported above; the checks that follow see each id once.
  const triggers = Array.isArray(raw.triggers) ? raw.triggers : [];
  return {
    workflow,
    source,
    inProject: hasId,
    triggers: triggers.flatMap((trigger, index) =>
      isValid(["triggers", index]) ? [{ trigger: trigger as TriggerConfig, index }] : []
    ),
    tasks: kept,
    brokenTaskReferences: referencing,
    brokenTasks: walk.slots.filter((s) => !s.site).map((s) => s.raw),
    brokenTaskIds,
    complete: walk.complete,
  };
}

/** A task as found in the file: `site` when it and every task it runs inside have no error of their own. */
interface TaskSlot {
  raw: unknown;
  id: string | undefined;
  path: PathSegment[];
  role: TaskRole;
  site?: TaskSite;
}

/**
 * A task left out for a schema error, reduced to the references it makes from fields without an error: the
 * `use` of a basic task (with its `action`, unless that has an error: then the agent's action is unknown),
 * and the `next` of its `on_success` and `on_error` when it runs in the flow (a child's are refused by the
 * checks of trusted tasks only; here they are left alone). Undefined when it makes none.
 */
function readableReferences(slot: TaskSlot, isValid: (path: PathSegment[]) => boolean): TaskSite | undefined {
  const { raw, path, role } = slot;
  if (!isMapping(raw) || typeof raw.id !== "string") return undefined;
  const task: Record<string, unknown> = { id: raw.id };
  const valid = (...field: PathSegment[]) => isValid([...path, ...field]);
  const basic = raw.type === undefined || raw.type === "basic";
  const useReadable = basic && typeof raw.use === "string" && parseUse(raw.use) !== undefined && valid("use");
  if (useReadable && (raw.action === undefined || valid("action"))) {
    Object.assign(task, { type: "basic", use: raw.use, action: raw.action });
  }
  for (const field of ["on_success", "on_error"] as const) {
    const next = isMapping(raw[field]) ? raw[field].next : undefined;
    if (role === "flow" && typeof next === "string" && valid(field, "next")) task[field] = { next };
  }
  if (Object.keys(task).length === 1) return undefined;
  return { task: task as unknown as TaskConfig, path, role };
}

/**
 * Every task under `tasks`, parents before their children, in file order (the order of `collectTaskSites`),
 * whatever their errors; `complete` is false when any task (or the list itself) has an error.
 */
function walkTasks(list: unknown, errors: readonly Diagnostic[]): { slots: TaskSlot[]; complete: boolean } {
  const slots: TaskSlot[] = [];
  const complete = !errors.some((e) => under("tasks", e.path));
  const visit = (
    raw: unknown,
    path: PathSegment[],
    role: TaskRole,
    parent: TaskSite | undefined,
    sound: boolean,
  ) => {
    if (!isMapping(raw)) {
      // Not a task at all: the schema reported it, so `complete` is already false.
      slots.push({ raw, id: undefined, path, role });
      return;
    }
    const children = inlineTaskSlots(raw, path);
    const childPrefixes = children.map(([, childPath]) => formatPath(childPath));
    const prefix = formatPath(path);
    const ownError = errors.some((e) =>
      under(prefix, e.path) && !childPrefixes.some((c) => under(c, e.path))
    );
    const trusted = sound && !ownError;
    let site: TaskSite | undefined;
    if (trusted) {
      // A task without `type` is basic; the loaded config says so explicitly.
      (raw as { type?: string }).type ??= "basic";
      site = { task: raw as unknown as TaskConfig, path, role, parent };
    }
    slots.push({ raw, id: typeof raw.id === "string" ? raw.id : undefined, path, role, site });
    for (const [child, childPath, childRole] of children) visit(child, childPath, childRole, site, trusted);
  };
  if (Array.isArray(list)) list.forEach((task, i) => visit(task, ["tasks", i], "flow", undefined, true));
  return { slots, complete };
}

/**
 * The inline tasks a task declares, read from its raw fields (as `collectTaskSites` does from valid ones).
 * Only mappings are tasks: a route naming a task is a transition, and anything else is the parent's error.
 * A task whose `type` is not a task type (a typo such as `paralel`) may hold its inline tasks in any of the
 * fields that hold them: their ids still count, for duplicates and for references to them.
 */
function inlineTaskSlots(
  task: Record<string, unknown>,
  path: PathSegment[],
): [unknown, PathSegment[], TaskRole][] {
  const out: [unknown, PathSegment[], TaskRole][] = [];
  const unknownType = task.type !== undefined && !(TASK_TYPES as readonly unknown[]).includes(task.type);
  if (task.type === "router" || unknownType) {
    if (isMapping(task.routes)) {
      for (const [value, target] of Object.entries(task.routes)) {
        if (isMapping(target)) out.push([target, [...path, "routes", value], "route"]);
      }
    }
    if (isMapping(task.default)) out.push([task.default, [...path, "default"], "route"]);
  }
  if ((task.type === "parallel" || task.type === "composite" || unknownType) && Array.isArray(task.tasks)) {
    task.tasks.forEach((child, i) => {
      if (isMapping(child)) out.push([child, [...path, "tasks", i], "child"]);
    });
  }
  if ((task.type === "collection" || unknownType) && isMapping(task.task)) {
    out.push([task.task, [...path, "task"], "child"]);
  }
  return out;
}

/** Whether the error at field path `errorPath` concerns the value at `prefix` or anything inside it. */
function under(prefix: string, errorPath: string): boolean {
  return errorPath === prefix || errorPath.startsWith(`${prefix}.`) || errorPath.startsWith(`${prefix}[`);
}
