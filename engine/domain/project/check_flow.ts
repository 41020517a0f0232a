/**
 * Checks of a workflow's control flow: no cycles through transitions, and a warning for steps that no path
 * reaches.
 *
 * @module
 */

import {
  buildTaskGraph,
  findCycles,
  type FlowEdge,
  reachableSteps,
  type TaskGraph,
} from "../workflow/task_graph.ts";
import type { TaskSite } from "../task/walk.ts";
import type { Analysis, DiagnosticList } from "./analysis.ts";

export function checkFlow(analysis: Analysis, diagnostics: DiagnosticList): void {
  for (const { source, tasks, complete } of analysis.workflows) {
    const graph = buildTaskGraph(tasks);
    if (!complete) keepWrittenEdges(graph, tasks);
    for (const cycle of findCycles(graph)) {
      const at = blameEdge(cycle, graph.steps);
      const names = [...cycle.map((e) => e.from), cycle[0].from].map((id) => `"${id}"`).join(" → ");
      diagnostics.error(source, at.path, `cycle in transitions: ${names}`);
    }
    // A task left out for a schema error may lead anywhere: what it reaches is unknown.
    if (!complete) continue;
    const reachable = reachableSteps(graph);
    for (const site of tasks) {
      if (site.role === "child" || reachable.has(site.task.id)) continue;
      diagnostics.warning(
        source,
        site.path,
        `task "${site.task.id}" can never run: no path from the first task "${graph.entry}" leads to it`,
      );
    }
  }
}

/**
 * The edge to report a cycle at: one that goes back up the list, which is the one the author wrote to loop.
 * A list-order edge is never blamed: it has no field of its own.
 */
function blameEdge(cycle: FlowEdge[], order: string[]): FlowEdge {
  const explicit = cycle.filter((e) => !e.list);
  return explicit.find((e) => order.indexOf(e.to) <= order.indexOf(e.from)) ?? explicit[0] ?? cycle[0];
}

/**
 * In a workflow with tasks left out for schema errors, the graph's list-order edge from a task goes to the
 * next task kept, which may not be the next task of the file; only the edges the file really has are kept,
 * so a cycle found is a cycle of the file. Edges out of the left-out tasks are unknown and missing.
 */
function keepWrittenEdges(graph: TaskGraph, sites: readonly TaskSite[]): void {
  const indexById = new Map(sites.filter((s) => s.role === "flow").map((s) => [s.task.id, s.path[1]]));
  for (const [id, edges] of graph.successors) {
    graph.successors.set(
      id,
      edges.filter((e) => !e.list || indexById.get(e.to) === (indexById.get(e.from) as number) + 1),
    );
  }
}
