/**
 * The timeline (Gantt) of an execution's tasks, built from its state and history: a bar per task execution
 * from start to end; attempts marked; a retry's backoff and a wait or sleep drawn as waiting (hatched);
 * children of parallel, collection and composite tasks stacked under their parent.
 */
import { formatDuration, ui } from "./common.js";

/** Per task execution: attempt starts, retry backoffs and waiting spans, from the history. */
export function taskSpans(events) {
  const spans = new Map();
  const of = (id) => {
    if (!spans.has(id)) spans.set(id, { attempts: [], backoffs: [], waits: [], wait: null });
    return spans.get(id);
  };
  for (const event of events) {
    const data = event.data ?? {};
    const id = data.task?.execId;
    if (!id) continue;
    const t = Date.parse(event.time);
    const s = of(id);
    if (event.type === "task.started") {
      s.attempts.push({ at: t, attempt: data.attempt ?? s.attempts.length + 1 });
    }
    if (event.type === "task.retry_scheduled") {
      s.backoffs.push({
        from: t,
        to: t + Number(data.delayMs ?? 0),
        next: data.nextAttempt,
        error: data.error?.message,
      });
    }
    if (event.type === "task.waiting_started") {
      const deadline = Number(data.deadlineUnixMs ?? 0) || null;
      s.wait = { from: t, to: null, signal: data.signalId ?? "", deadline };
      s.waits.push(s.wait);
    }
    if (
      (event.type === "task.waiting_ended" || event.type === "task.waiting_timed_out") && s.wait
    ) {
      s.wait.to = t;
      s.wait.payload = data.payload;
      s.wait.timedOut = event.type === "task.waiting_timed_out";
      s.wait = null;
    }
  }
  return spans;
}

/** Task executions ordered for display: by start, each followed by its children (depth for indentation). */
export function orderTasks(tasks) {
  const byParent = new Map();
  const ids = new Set(tasks.map((t) => t.exec_id));
  for (const t of tasks) {
    const parent = t.parent_exec_id && ids.has(t.parent_exec_id) ? t.parent_exec_id : "";
    if (!byParent.has(parent)) byParent.set(parent, []);
    byParent.get(parent).push(t);
  }
  const start = (t) => (t.started_at ? Date.parse(t.started_at) : Infinity);
  const out = [];
  const walk = (parent, depth) => {
    for (const t of (byParent.get(parent) ?? []).sort((a, b) => start(a) - start(b))) {
      out.push({ task: t, depth });
      walk(t.exec_id, depth + 1);
    }
  };
  walk("", 0);
  return out;
}

export function Timeline({ state, events, selected, onSelect, now }) {
  const rows = orderTasks(state.tasks);
  const spans = taskSpans(events);
  const t0 = state.started_at ? Date.parse(state.started_at) : now;
  const t1 = Math.max(state.ended_at ? Date.parse(state.ended_at) : now, t0 + 1);
  const pct = (t) => `${Math.min(100, Math.max(0, ((t - t0) / (t1 - t0)) * 100)).toFixed(3)}%`;
  const width = (a, b) =>
    `${Math.max(0.4, ((Math.min(b, t1) - Math.max(a, t0)) / (t1 - t0)) * 100).toFixed(3)}%`;
  if (rows.length === 0) return ui`<p class="muted">No task has started yet.</p>`;
  return ui`<div class="timeline" role="list" aria-label="Timeline of tasks">
    <div class="tl-scale"><span>0</span><span>${formatDuration(t1 - t0)}</span></div>
    ${
    rows.map(({ task, depth }) => {
      const s = spans.get(task.exec_id) ?? { attempts: [], backoffs: [], waits: [] };
      const start = task.started_at ? Date.parse(task.started_at) : null;
      const end = task.ended_at ? Date.parse(task.ended_at) : now;
      const title = `${task.task_id}: ${task.status}, ${task.attempts} attempt(s), ${
        start ? formatDuration(end - start) : "not started"
      }`;
      return ui`
        <button
          role="listitem"
          class=${`tl-row ${selected === task.exec_id ? "selected" : ""}`}
          data-task=${task.task_id}
          data-status=${task.status}
          title=${title}
          onClick=${() => onSelect(task.exec_id)}
        >
          <span class="tl-label" style=${`padding-left:${depth * 0.9}rem`}>${
        task.task_id.split("/")
          .pop()
      }${task.attempts > 1 ? ui` <span class="muted small">×${task.attempts}</span>` : null}</span>
          <span class="tl-track">
                  ${
        start !== null
          ? ui`<span class=${`tl-bar s-${task.status.toLowerCase()}`} style=${`left:${pct(start)};width:${
            width(start, end)
          }`}></span>`
          : null
      }
                  ${
        s.backoffs.map((b) =>
          ui`<span class="tl-wait tl-backoff" title=${`retry backoff ${formatDuration(b.to - b.from)}${
            b.error ? `: ${b.error}` : ""
          }`} style=${`left:${pct(b.from)};width:${width(b.from, b.to)}`}></span>`
        )
      }
                  ${
        s.waits.map((w) =>
          ui`<span class="tl-wait" title=${
            w.signal
              ? `waiting for signal ${w.signal}`
              : w.deadline
              ? "sleeping"
              : "waiting for its sub-workflow"
          } style=${`left:${pct(w.from)};width:${width(w.from, w.to ?? now)}`}></span>`
        )
      }
                  ${
        s.attempts.slice(1).map((a) =>
          ui`<span class="tl-attempt" title=${`attempt ${a.attempt}`} style=${`left:${pct(a.at)}`}></span>`
        )
      }
                </span>
          <span class="tl-dur">${start !== null ? formatDuration(end - start) : "—"}</span>
        </button>
      `;
    })
  }
    <div class="legend small muted"><span class="tl-key run"></span> running/done <span class="tl-key wait"></span> waiting (a signal, a sub-workflow), sleeping or retry backoff <span class="tl-key att"></span> a new attempt</div>
  </div>`;
}
