/**
 * Checks that every reference in a task names something that exists: `use:` targets, agent actions, and the
 * tasks that transitions (`next`, routes, `default`, `on_timeout`) go to.
 *
 * @module
 */

import { resolve } from "node:path";
import type { PathSegment } from "../diagnostics.ts";
import type { TaskSite } from "../task/walk.ts";
import { type Analysis, type DiagnosticList, type LoadedWorkflow, trusts } from "./analysis.ts";
import { isToolDefinition, lookupUse } from "./resolve_use.ts";
import { closest, didYouMean } from "./suggest.ts";
import { parseUse } from "./use_reference.ts";

export function checkReferences(analysis: Analysis, diagnostics: DiagnosticList): void {
  const unchecked = new Set<string>();
  for (const loaded of analysis.workflows) {
    const sitesById = new Map(loaded.tasks.map((s) => [s.task.id, s]));
    for (const site of loaded.tasks) {
      if (site.task.type === "basic") checkUse(analysis, loaded, site, diagnostics, unchecked);
      for (const [path, target] of transitionTargets(site)) {
        checkTarget(loaded, sitesById, path, target, diagnostics);
      }
      if (site.role === "child") checkChildFields(loaded, site, diagnostics);
    }
    for (const site of loaded.brokenTaskReferences) {
      if (site.task.type === "basic") checkUse(analysis, loaded, site, diagnostics, unchecked);
      for (const field of ["on_success", "on_error"] as const) {
        const next = site.task[field]?.next;
        if (next !== undefined) {
          checkTarget(loaded, sitesById, [...site.path, field, "next"], next, diagnostics);
        }
      }
    }
  }
  reportUnchecked(analysis, unchecked, diagnostics);
}

/**
 * One warning for the workflow references that may name the workflow of a file that does not parse or is
 * not found, instead of an "unknown workflow" error at each: the file's own error is the one to fix first.
 */
function reportUnchecked(analysis: Analysis, unchecked: Set<string>, diagnostics: DiagnosticList): void {
  const [first] = analysis.unreadableWorkflows;
  if (unchecked.size === 0 || !first) return;
  const ids = [...unchecked].map((id) => `"${id}"`).join(", ");
  diagnostics.warning(
    analysis.projectSource,
    first.path,
    `references to workflows not found in the project (${ids}) were not checked: they may name the workflow of ${
      unreadableFiles(analysis)
    }`,
  );
}

/** The workflow files whose id is unknown, and why. */
function unreadableFiles(analysis: Analysis): string {
  const missing = analysis.unreadableWorkflows.filter((w) => w.missing).map((w) => w.source);
  const unparsable = analysis.unreadableWorkflows.filter((w) => !w.missing).map((w) => w.source);
  return [
    ...unparsable.length
      ? [`${unparsable.join(", ")}, whose id cannot be read until its YAML syntax error is fixed`]
      : [],
    ...missing.length ? [`${missing.join(", ")}, which is not found`] : [],
  ].join("; or of ");
}

/** Every task id a task may go to next, with the field that names it. */
export function transitionTargets(site: TaskSite): [PathSegment[], string][] {
  const { task, path } = site;
  const out: [PathSegment[], string][] = [];
  if (task.on_success) out.push([[...path, "on_success", "next"], task.on_success.next]);
  if (task.on_error) out.push([[...path, "on_error", "next"], task.on_error.next]);
  if (task.type === "router") {
    for (const [value, target] of Object.entries(task.routes)) {
      if (typeof target === "string") out.push([[...path, "routes", value], target]);
    }
    if (typeof task.default === "string") out.push([[...path, "default"], task.default]);
  }
  if (task.type === "wait" && task.on_timeout) out.push([[...path, "on_timeout"], task.on_timeout]);
  return out;
}

function checkTarget(
  loaded: LoadedWorkflow,
  sitesById: Map<string, TaskSite>,
  path: PathSegment[],
  target: string,
  diagnostics: DiagnosticList,
): void {
  const site = sitesById.get(target);
  if (!site && loaded.brokenTaskIds.has(target)) return; // its own schema error is reported
  if (!site) {
    const hint = didYouMean(target, sitesById.keys());
    diagnostics.error(
      loaded.source,
      path,
      `unknown task "${target}" in workflow "${loaded.workflow.id}"${hint}`,
    );
  } else if (site.role === "child") {
    diagnostics.error(
      loaded.source,
      path,
      `task "${target}" runs inside task "${site.parent!.task.id}" and cannot be gone to directly`,
    );
  }
}

/** A child finishes with its parent: it cannot steer the workflow. */
function checkChildFields(loaded: LoadedWorkflow, site: TaskSite, diagnostics: DiagnosticList): void {
  const parent = site.parent!.task;
  const inside = `${parent.type} task "${parent.id}"`;
  for (const field of ["on_success", "final"] as const) {
    if (site.task[field] !== undefined) {
      diagnostics.error(
        loaded.source,
        [...site.path, field],
        `${field} is not allowed inside ${inside}: a child finishes with its parent`,
        "key",
      );
    }
  }
  if (site.task.on_error) {
    diagnostics.error(
      loaded.source,
      [...site.path, "on_error"],
      `on_error is not allowed inside ${inside}: a child's failure is its parent's (use on_error on "${parent.id}")`,
      "key",
    );
  }
  if (site.task.type === "router") {
    diagnostics.error(
      loaded.source,
      [...site.path, "type"],
      `a router cannot run inside ${inside}: routers choose the workflow's next task`,
    );
  }
  // A best_effort parallel's output is its children's outputs by id plus an `errors` map of the failed ones:
  // a child named `errors` had its output overwritten by that map, or the map by its output (brk-eng3 E2).
  if (parent.type === "parallel" && parent.strategy === "best_effort" && site.task.id === "errors") {
    diagnostics.error(
      loaded.source,
      [...site.path, "id"],
      `a child of best_effort ${inside} cannot be named "errors": its output map keeps that key for the failed children`,
    );
  }
  if (site.task.type === "wait" && site.task.on_timeout) {
    diagnostics.error(
      loaded.source,
      [...site.path, "on_timeout"],
      `on_timeout is not allowed inside ${inside}: a child's timeout fails its parent`,
      "key",
    );
  }
}

function checkUse(
  analysis: Analysis,
  loaded: LoadedWorkflow,
  site: TaskSite,
  diagnostics: DiagnosticList,
  unchecked: Set<string>,
): void {
  if (site.task.type !== "basic") return;
  const { project } = analysis;
  const { workflow, source } = loaded;
  const usePath = [...site.path, "use"];
  const ref = parseUse(site.task.use)!;
  const action = site.task.action;
  const resolved = lookupUse(project, workflow, site.task.use);
  if (ref.by === "file" && !resolved) {
    // A missing or invalid file was reported where it was read; what remains is a file of the other kind.
    const def = analysis.fileDefinitions.get(resolve(workflow.dir, ref.value));
    if (def) {
      const [found, wanted] = isToolDefinition(def) ? ["a tool", "an agent"] : ["an agent", "a tool"];
      diagnostics.error(source, usePath, `${ref.value} defines ${found}, not ${wanted}`);
    }
    return;
  } else if (!resolved) {
    // Workflows, tools and agents with schema errors are still loaded (load_workflow.ts, definitions.ts): an
    // id of theirs never dangles. The id of a workflow file that does not parse is read from its text when it
    // can be; when it cannot, the reference may name it and is left unchecked.
    if (ref.kind === "workflow" && analysis.broken.workflows.has(ref.value)) return;
    if (ref.kind === "workflow" && analysis.unreadableWorkflows.length > 0) {
      // A likely typo of a known id is still pointed out, at the reference, but as a warning: the unreadable
      // file may be the workflow it names. (The file's own error fails the run either way.)
      const match = closest(ref.value, project.workflows.keys());
      if (match === undefined) unchecked.add(ref.value);
      else {
        diagnostics.warning(
          source,
          usePath,
          `workflow "${ref.value}" is not in the project (did you mean "${match}"?); it may be the workflow of ${
            unreadableFiles(analysis)
          }`,
        );
      }
      return;
    }
    const candidates = ref.kind === "tool"
      ? [...workflow.tools.keys(), ...project.tools.keys()]
      : ref.kind === "agent"
      ? [...workflow.agents.keys(), ...project.agents.keys()]
      : [...project.workflows.keys()];
    const where = ref.kind === "workflow" ? "in the project" : "in this workflow or the project";
    diagnostics.error(
      source,
      usePath,
      `unknown ${ref.kind} "${ref.value}": not declared ${where}${didYouMean(ref.value, candidates)}`,
    );
    return;
  }
  if (resolved?.kind === "agent") {
    // Which actions the agent has is unknown when its `actions`, or the id of one, was left out for a schema
    // error (an error elsewhere in an action leaves its id known).
    const declared = resolved.agent.actions;
    const known = declared === undefined
      ? trusts(analysis, resolved.agent, "actions")
      : declared.every((_, i) => trusts(analysis, resolved.agent, "actions", i, "id"));
    if (!known) return;
    const actions = [...new Set((declared ?? []).map((a) => a.id))]; // a duplicate is reported at the agent
    const list = actions.length ? `its actions: ${actions.join(", ")}` : "it declares no actions";
    if (action === undefined) {
      diagnostics.error(
        source,
        site.path,
        `missing required field "action": agent "${resolved.agent.id}" runs an action (${list})`,
      );
    } else if (!actions.includes(action)) {
      diagnostics.error(
        source,
        [...site.path, "action"],
        `unknown action "${action}" of agent "${resolved.agent.id}" (${list})${didYouMean(action, actions)}`,
      );
    }
  } else if (action !== undefined) {
    diagnostics.error(
      source,
      [...site.path, "action"],
      `action applies to agents only; ${site.task.use} is a ${ref.kind}`,
      "key",
    );
  }
}
