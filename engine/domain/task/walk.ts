/**
 * Enumerates every task of a workflow, inline ones included, with where it sits.
 *
 * @module
 */

import type { PathSegment } from "../diagnostics.ts";
import type { TaskConfig } from "./schema.ts";

/**
 * - `flow`: a task of the workflow's `tasks:` list;
 * - `route`: a task declared inline as a router's route or default; like a flow task it is a step of the
 *   workflow's control flow;
 * - `child`: a task run by its parent (parallel, collection, composite), which finishes with the parent.
 */
export type TaskRole = "flow" | "route" | "child";

export interface TaskSite {
  task: TaskConfig;
  /** Field path of the task in its workflow file, e.g. `["tasks", 2, "routes", "yes"]`. */
  path: PathSegment[];
  role: TaskRole;
  parent?: TaskSite;
}

/** Every task under `tasks`, parents before their children, in file order. */
export function collectTaskSites(tasks: readonly TaskConfig[], base: PathSegment[] = ["tasks"]): TaskSite[] {
  const out: TaskSite[] = [];
  const visit = (task: TaskConfig, path: PathSegment[], role: TaskRole, parent?: TaskSite) => {
    const site: TaskSite = { task, path, role, parent };
    out.push(site);
    for (const [child, childPath, childRole] of inlineTasks(task, path)) {
      visit(child, childPath, childRole, site);
    }
  };
  tasks.forEach((task, i) => visit(task, [...base, i], "flow"));
  return out;
}

/** The tasks declared inside `task`, with their paths and roles. */
function inlineTasks(task: TaskConfig, path: PathSegment[]): [TaskConfig, PathSegment[], TaskRole][] {
  // `type` may still be missing here: the loader normalises it with this walk.
  switch (task.type) {
    case "router": {
      const out: [TaskConfig, PathSegment[], TaskRole][] = [];
      for (const [value, target] of Object.entries(task.routes)) {
        if (typeof target === "object") out.push([target, [...path, "routes", value], "route"]);
      }
      if (typeof task.default === "object") out.push([task.default, [...path, "default"], "route"]);
      return out;
    }
    case "parallel":
    case "composite":
      return task.tasks.map((child, i) => [child, [...path, "tasks", i], "child"]);
    case "collection":
      return [[task.task, [...path, "task"], "child"]];
    default:
      return [];
  }
}

/** The flow or route task that `site` belongs to (itself, or the outermost parent that runs it). */
export function flowStep(site: TaskSite): TaskSite {
  let current = site;
  while (current.role === "child" && current.parent) current = current.parent;
  return current;
}
