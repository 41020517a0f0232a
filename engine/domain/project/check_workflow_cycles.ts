/**
 * Checks that sub-workflows (`use: workflow(id=…)`) never lead back to a workflow that is running.
 *
 * @module
 */

import type { Analysis, DiagnosticList, LoadedWorkflow, Site } from "./analysis.ts";
import { parseUse } from "./use_reference.ts";

interface UseEdge extends Site {
  from: string;
  to: string;
}

export function checkWorkflowCycles(analysis: Analysis, diagnostics: DiagnosticList): void {
  // A workflow left out of the project (no id, or a taken one) is reached by no `use:`: in no cycle.
  const inProject = analysis.workflows.filter((w) => w.inProject);
  const edges = new Map(inProject.map((w) => [w.workflow.id, workflowEdges(w, analysis)]));
  const state = new Map<string, "open" | "done">();
  const stack: UseEdge[] = [];
  const reported = new Set<string>();
  const visit = (id: string) => {
    state.set(id, "open");
    for (const edge of edges.get(id) ?? []) {
      if (state.get(edge.to) === "open") {
        const start = stack.findIndex((e) => e.from === edge.to);
        const cycle = [...stack.slice(start < 0 ? stack.length : start), edge];
        const key = cycle.map((e) => e.from).sort().join("\u0000");
        if (reported.has(key)) continue;
        reported.add(key);
        const names = [...cycle.map((e) => e.from), edge.to].map((w) => `"${w}"`).join(" → ");
        diagnostics.error(edge.source, edge.path, `cycle in sub-workflows: ${names}`);
      } else if (!state.has(edge.to)) {
        stack.push(edge);
        visit(edge.to);
        stack.pop();
      }
    }
    state.set(id, "done");
  };
  for (const id of edges.keys()) if (!state.has(id)) visit(id);
}

function workflowEdges({ workflow, source, tasks }: LoadedWorkflow, analysis: Analysis): UseEdge[] {
  const out: UseEdge[] = [];
  for (const { task, path } of tasks) {
    if (task.type !== "basic") continue;
    const ref = parseUse(task.use);
    if (ref?.kind !== "workflow" || !analysis.project.workflows.has(ref.value)) continue;
    out.push({ from: workflow.id, to: ref.value, source, path: [...path, "use"] });
  }
  return out;
}
