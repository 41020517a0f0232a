/**
 * The workflow graph: its tasks in declaration order (the default flow), containers (parallel, collection,
 * composite) as boxes holding their tasks, and each task's explicit transitions (next on success, on error,
 * a router's routes), with the state of the task's latest execution on it.
 */
import { Status, ui } from "./common.js";

function transitions(task) {
  const out = [];
  if (task.on_success?.next) out.push(["next", task.on_success.next]);
  if (task.on_error?.next) out.push(["on error", task.on_error.next]);
  if (task.on_timeout) out.push(["on timeout", task.on_timeout]);
  for (const [value, target] of Object.entries(task.routes ?? {})) {
    out.push([`= ${value}`, typeof target === "string" ? target : target?.id ?? "(inline)"]);
  }
  if (task.final) out.push(["final", "end"]);
  return out;
}

function children(task) {
  if (Array.isArray(task.tasks)) return task.tasks;
  if (task.task && typeof task.task === "object") return [task.task];
  return [];
}

/** `path` is the task's id as executions name it: a child's is `<parent>/<child>`. */
function Node({ task, path, statusOf, onSelect }) {
  const state = statusOf(path);
  const kids = children(task);
  const kind = task.type ?? (task.use ? String(task.use).replace(/\(.*/, "") : "basic");
  return ui`<li class=${`g-node ${kids.length ? "g-container" : ""}`} data-task=${path}>
    <button class=${`g-box s-${(state?.status ?? "none").toLowerCase()}`} onClick=${() =>
    state && onSelect(state.exec_id)} disabled=${!state}>
      <span class="g-id">${task.id}</span>
      <span class="g-kind muted small">${kind}${task.use ? ` · ${task.use}` : ""}</span>
      ${state ? ui`<${Status} status=${state.status} />` : ui`<span class="muted small">not reached</span>`}
    </button>
    ${
    transitions(task).length
      ? ui`<ul class="g-edges small">${
        transitions(task).map(([label, target]) => ui`<li>${label} → <code>${target}</code></li>`)
      }</ul>`
      : null
  }
    ${
    kids.length
      ? ui`<ol class=${`g-children ${task.type === "composite" ? "" : "g-parallel"}`}>${
        kids.map((k) =>
          ui`<${Node} task=${k} path=${`${path}/${k.id}`} statusOf=${statusOf} onSelect=${onSelect} />`
        )
      }</ol>`
      : null
  }
  </li>`;
}

export function Graph({ workflow, state, onSelect }) {
  if (!workflow) return ui`<p class="muted">The workflow's definition is not loaded on this server.</p>`;
  // The latest execution of each task id (a retried or re-entered task has several).
  const latest = new Map();
  for (const t of state.tasks) {
    const seen = latest.get(t.task_id);
    if (!seen || (t.started_at ?? "") >= (seen.started_at ?? "")) latest.set(t.task_id, t);
  }
  return ui`<ol class="graph" aria-label="Workflow graph">${
    (workflow.tasks ?? []).map((t) =>
      ui`<${Node} task=${t} path=${t.id} statusOf=${(id) => latest.get(id)} onSelect=${onSelect} />`
    )
  }</ol>`;
}
