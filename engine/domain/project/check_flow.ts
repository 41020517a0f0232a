/**
 * Checks of a workflow's control flow: no cycles through transitions, and a warning for steps that no path
 * reaches.
 *
 * @module
 */

import { buildTaskGraph, findCycles, type FlowEdge, reachableSteps } from "../workflow/task_graph.ts";
import type { Analysis, DiagnosticList } from "./analysis.ts";

export function checkFlow(analysis: Analysis, diagnostics: DiagnosticList): void {
  for (const { source, tasks } of analysis.workflows) {
    const graph = buildTaskGraph(tasks);
    for (const cycle of findCycles(graph)) {
      const at = blameEdge(cycle, graph.steps);
      const names = [...cycle.map((e) => e.from), cycle[0].from].map((id) => `"${id}"`).join(" → ");
      diagnostics.error(source, at.path, `cycle in transitions: ${names}`);
    }
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
