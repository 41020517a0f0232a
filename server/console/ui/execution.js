/**
 * One execution: its state, live over SSE while it runs; the timeline, the workflow graph, the raw history and
 * the logs; the selected task's input, output, error, logs and agent details; why it waits; and the actions
 * (signal, pause, resume, cancel, re-run).
 */
import { useEffect, useRef, useState } from "preact/hooks";
import { api, followEvents, history, TERMINAL } from "./api.js";
import { Actions } from "./actions.js";
import {
  durationOf,
  ErrorBox,
  formatDuration,
  formatTime,
  JsonView,
  modelName,
  Status,
  ui,
  useTick,
  warn,
} from "./common.js";
import { Graph } from "./graph.js";
import { InvalidId, isExecId } from "./ids.js";
import { taskSpans, Timeline } from "./timeline.js";

/** The heading of an ended execution's error, by status: a cancel or a timeout is not a failure. */
const ENDING = {
  CANCELED: "The execution was canceled",
  TIMED_OUT: "The execution timed out",
};

/** Every task definition of a workflow by the id executions give it (`parent/child` for nested ones). */
function taskDefinitions(workflow) {
  const out = new Map();
  const walk = (tasks, prefix) => {
    for (const t of tasks ?? []) {
      const path = `${prefix}${t.id}`;
      out.set(path, t);
      walk(t.tasks, `${path}/`);
      if (t.task && typeof t.task === "object") walk([t.task], `${path}/`);
    }
  };
  walk(workflow?.tasks, "");
  return out;
}

/** One sentence: what a waiting task waits for, until when, and where a timeout leads. */
function waitReason(task, def, wait, now) {
  const deadline = wait?.deadline ? new Date(wait.deadline).toISOString() : null;
  const remaining = deadline ? ` (in ${formatDuration(Date.parse(deadline) - now)})` : "";
  // A sub-workflow task waits for its child's end: no signal and no timer (its task.waiting_started has
  // neither), which read as "sleeps." before.
  const child = /^workflow\(id=([^)]+)\)$/.exec(def.use ?? "")?.[1];
  if (child) return ui`waits for its sub-workflow <code>${child}</code> to end.`;
  if (!task.waiting_for) {
    if (deadline) return ui`sleeps on a timer until ${formatTime(deadline)}${remaining}.`;
    return def.duration ? ui`sleeps for ${def.duration}.` : "sleeps.";
  }
  const condition = def.condition ? ui` with the condition <code>${def.condition}</code>` : null;
  const timeout = deadline
    ? ui`; it times out at ${formatTime(deadline)}${remaining}${
      def.on_timeout ? ui`, then goes to <code>${def.on_timeout}</code>` : null
    }`
    : def.timeout
    ? `; timeout ${def.timeout}`
    : null;
  return ui`waits for the signal <code>${task.waiting_for}</code>${condition}${timeout}.`;
}

/** The re-reads after a lost connection: the first at once (as any reload), then 0.5 s doubling to 5 s. */
const RETRY_FIRST_MS = 500;
const RETRY_MAX_MS = 5_000;
const retryDelay = (attempt) =>
  attempt === 0 ? 120 : Math.min(RETRY_FIRST_MS * 2 ** (attempt - 1), RETRY_MAX_MS);

/** A failure that says nothing about the execution: the server (or a proxy before it) did not answer it. */
const unreachable = (e) => e.status === 0 || e.status >= 500;

/** Log records the Logs tab reads: one page of the API at its largest. */
const MAX_LOG_RECORDS = 5000;

export function ExecutionPage({ execId }) {
  if (isExecId(execId)) return ui`<${ExecutionView} execId=${execId} />`;
  return ui`<section>
    <h1>Execution</h1>
    <${InvalidId} kind="execution" id=${execId} />
    <p><a href="#/executions">← Back to the executions</a></p>
  </section>`;
}

function ExecutionView({ execId }) {
  const [state, setState] = useState(null);
  const [events, setEvents] = useState([]);
  const [eventsError, setEventsError] = useState(null);
  const [eventsMore, setEventsMore] = useState(false);
  const [logs, setLogs] = useState(null);
  const [logsMore, setLogsMore] = useState(false);
  const [workflow, setWorkflow] = useState(null);
  const [agents, setAgents] = useState([]);
  const [children, setChildren] = useState([]);
  const [error, setError] = useState(null);
  const [connection, setConnection] = useState(null);
  const [selected, setSelected] = useState(null);
  const [thinking, setThinking] = useState({});
  const [tab, setTab] = useState("timeline");
  const reload = useRef(() => {});
  const live = state && !TERMINAL.has(state.status);
  useTick(500, !!live);

  useEffect(() => {
    setState(null);
    setError(null);
    setConnection(null);
    setSelected(null);
    setThinking({});
    const controller = new AbortController();
    const signal = controller.signal;
    const ignoreAbort = (e) => {
      if (e.name !== "AbortError") throw e;
    };
    // The newest stored event the page has: a stream opened again resumes after it (Last-Event-ID).
    let lastSeq = 0;
    const loadState = () =>
      api(`/api/executions/${encodeURIComponent(execId)}`, { signal }).then((s) => {
        setState(s);
        return s;
      });
    const loadRest = () => {
      history(execId, { signal }).then(
        (r) => {
          setEvents(r.events);
          setEventsMore(r.more);
          lastSeq = r.events.reduce((max, e) => Math.max(max, e.seq), lastSeq);
        },
        (e) => e.name !== "AbortError" && setEventsError(e),
      );
      // One page, as the events: the rest stays in the API (and `compozy executions logs`), said on the tab.
      api(`/api/logs?exec_id=${encodeURIComponent(execId)}&limit=${MAX_LOG_RECORDS}`, { signal }).then(
        (r) => {
          setLogs(r.items);
          setLogsMore(r.next_cursor !== null);
        },
        (e) => e.name !== "AbortError" && setLogs(e),
      );
      // Sub-workflows name their parent in their state; the newest executions are where they are.
      api("/api/executions?limit=200", { signal }).then(
        (p) => setChildren(p.items.filter((e) => e.parent?.exec_id === execId)),
        warn("the sub-workflows"),
      );
    };
    // The live stream ends after the execution's last event, or when the server goes away (a restart): the
    // page re-reads the state then, and follows the stream again while the execution runs. A server that does
    // not answer is retried with a back-off, the page keeping what it showed and saying it reconnects.
    let pending;
    let attempt = 0;
    let streaming = false;
    let stopStream = () => {};
    const follow = () => {
      streaming = true;
      const openedAt = Date.now();
      let delivered = false;
      stopStream = followEvents(
        execId,
        (event) => {
          if (event.type === "agent.delta") return setThinking((all) => withDelta(all, event.data));
          delivered = true;
          lastSeq = Math.max(lastSeq, event.seq);
          setEvents((all) => all.some((e) => e.seq === event.seq) ? all : [...all, event]);
          reload.current();
        },
        (e) => {
          streaming = false;
          if (e) warn("the live events")(e);
          // A stream that ended at once with nothing new backs off too: no loop of streams opened and closed.
          attempt = delivered || Date.now() - openedAt > RETRY_MAX_MS ? 0 : attempt + 1;
          reload.current();
        },
        { deltas: true, after: lastSeq },
      );
    };
    reload.current = () => {
      clearTimeout(pending);
      pending = setTimeout(async () => {
        try {
          const s = await loadState();
          setConnection(null);
          loadRest();
          if (!TERMINAL.has(s.status) && !streaming) follow();
        } catch (e) {
          if (e.name === "AbortError") return;
          if (!unreachable(e)) return setError(e);
          setConnection(e);
          attempt += 1;
          reload.current();
        }
      }, retryDelay(attempt));
    };
    // The first read is retried as the later ones are: a page opened (or navigated to) while the server is
    // down says it is reconnecting and loads once the server answers, instead of an error that stays.
    const open = () =>
      loadState().then((s) => {
        attempt = 0;
        setConnection(null);
        api(`/api/workflows/${encodeURIComponent(s.workflow_id)}`, { signal }).then(
          setWorkflow,
          warn("the workflow's definition"),
        );
        api(`/api/agents?workflow_id=${encodeURIComponent(s.workflow_id)}`, { signal }).then(
          (r) => setAgents(r.items),
          warn("the agents"),
        );
        loadRest();
        if (!TERMINAL.has(s.status)) follow();
      }, (e) => {
        if (!unreachable(e)) throw e;
        setConnection(e);
        pending = setTimeout(open, retryDelay(attempt++));
      }).catch(ignoreAbort).catch(setError);
    open();
    return () => {
      clearTimeout(pending);
      controller.abort();
      stopStream();
    };
  }, [execId]);

  if (error) {
    return ui`
      <section>
        <h1>Execution <span class="mono">${execId}</span></h1>
        <${ErrorBox}
          error=${error}
          context=${
      error.status === 404 ? "There is no execution with this id" : "Cannot load this execution"
    }
        />
        <p><a href="#/executions">← Back to the executions</a></p>
      </section>
    `;
  }
  if (!state) {
    return connection
      ? ui`<p class="note reconnecting" role="status" id="exec-connection">Reconnecting to the server… the execution loads once it answers (<bdi>${connection.message}</bdi>).</p>`
      : ui`<p class="muted">Loading…</p>`;
  }

  const now = Date.now();
  const defs = taskDefinitions(workflow);
  const task = state.tasks.find((t) => t.exec_id === selected);
  const waiting = state.tasks.filter((t) => t.status === "WAITING");
  const spans = taskSpans(events);

  return ui`<section class="execution">
    <header class="exec-head">
      <h1><${Status} status=${state.status} /> ${state.workflow_id}</h1>
      <div class="mono small" id="exec-id">${state.exec_id}</div>
      <dl class="facts">
        <div><dt>Started</dt><dd>${formatTime(state.started_at)}</dd></div>
        <div><dt>Ended</dt><dd>${formatTime(state.ended_at)}</dd></div>
        <div><dt>Duration</dt><dd>${
    formatDuration(durationOf(state.started_at, state.ended_at, now))
  }</dd></div>
        ${
    state.usage
      ? ui`
        <div>
          <dt>Tokens</dt>
          <dd id="exec-usage">${formatUsage(state.usage)}</dd>
        </div>
      `
      : null
  }
        ${
    state.usage?.cost !== undefined
      ? ui`
        <div>
          <dt>Cost</dt>
          <dd id="exec-cost">${formatCost(state.usage.cost)}</dd>
        </div>
      `
      : null
  }
        ${
    state.parent
      ? ui`
        <div>
          <dt>Parent</dt>
          <dd><a class="mono" href=${`#/executions/${state.parent.exec_id}`}>${state.parent.exec_id}</a></dd>
        </div>
      `
      : null
  }
        ${
    state.rerun_of
      ? ui`
        <div>
          <dt>Re-run of</dt>
          <dd><a class="mono" href=${`#/executions/${state.rerun_of}`}>${state.rerun_of}</a></dd>
        </div>
      `
      : null
  }
        ${
    children.length
      ? ui`
        <div>
          <dt>Sub-workflows</dt>
          <dd>${
        children.map((c) =>
          ui`<div><a class="mono" href=${`#/executions/${c.exec_id}`}>${c.workflow_id} · ${c.exec_id}</a> <${Status}
            status=${c.status}
          /></div>`
        )
      }</dd>
        </div>
      `
      : null
  }
      </dl>
    </header>

    ${
    waiting.length
      ? ui`<section class="why-wait" aria-label="Why it waits"><h2>Why it waits</h2>${
        waiting.map((t) => {
          const def = defs.get(t.task_id) ?? {};
          const wait = spans.get(t.exec_id)?.wait;
          return ui`<div class="wait-item" data-task=${t.task_id}><strong>${t.task_id}</strong> ${
            waitReason(t, def, wait, now)
          }</div>`;
        })
      }</section>`
      : null
  }

    ${
    connection
      ? ui`<p class="note reconnecting" role="status" id="exec-connection">Reconnecting to the server… the page shows the execution as it was last read (<bdi>${connection.message}</bdi>).</p>`
      : null
  }

    <${Thinking} tasks=${state.tasks} thinking=${thinking} />

    <${Actions} state=${state} onDone=${() => reload.current()} />

    ${
    state.error
      ? ui`<${ErrorBox} error=${{
        message: state.error.message,
        code: state.error.code,
      }} context=${ENDING[state.status] ?? "The execution failed"} />`
      : null
  }
    <div class="io">
      <details open><summary>Input</summary><${JsonView} value=${state.input} /></details>
      <details open id="exec-output"><summary>Output</summary><${JsonView} value=${state.output} /></details>
    </div>

    <nav class="tabs" role="tablist">
      ${
    [["timeline", "Timeline"], ["graph", "Graph"], [
      "events",
      `Events (${events.length}${eventsMore ? "+" : ""})`,
    ], ["logs", Array.isArray(logs) && logsMore ? `Logs (${logs.length}+)` : "Logs"]]
      .map((
        [id, label],
      ) =>
        ui`<button role="tab" aria-selected=${tab === id} class=${tab === id ? "active" : ""} onClick=${() =>
          setTab(id)}>${label}</button>`
      )
  }
    </nav>
    <div class="tab-body">
      ${
    tab === "timeline"
      ? ui`<${Timeline} state=${state} events=${events} selected=${selected} onSelect=${setSelected} now=${now} />`
      : null
  }
      ${tab === "graph" ? ui`<${Graph} workflow=${workflow} state=${state} onSelect=${setSelected} />` : null}
      ${
    tab === "events"
      ? ui`<${ErrorBox} error=${eventsError} context="Cannot read the event history" />${
        eventsMore
          ? ui`<p class="muted">The first ${events.length} events; the rest: <code>GET /api/executions/${execId}/events?cursor=…</code></p>`
          : null
      }<${EventList} events=${events} />`
      : null
  }
      ${
    tab === "logs"
      ? ui`${
        logsMore
          ? ui`<p class="muted" id="logs-more">The first ${logs.length} log records; all of them: <code>compozy executions logs ${execId}</code></p>`
          : null
      }<${LogList} logs=${logs} />`
      : null
  }
    </div>
    ${
    task
      ? ui`
        <${TaskPanel}
          task=${task}
          def=${defs.get(task.task_id)}
          agents=${agents}
          events=${events.filter((e) => e.data?.task?.execId === task.exec_id)}
          logs=${Array.isArray(logs) ? logs.filter((l) => l.task_id === task.task_id) : []}
          onClose=${() => setSelected(null)}
        />
      `
      : ui`
        <p
          class="muted small">Select a task in the timeline or the graph to see its input, output, error and logs.</p>
      `
  }
  </section>`;
}

function TaskPanel({ task, def, agents, events, logs, onClose }) {
  const started = events.filter((e) => e.type === "task.started");
  // What a tool, agent or sub-workflow task ran with: its rendered `with`, recorded with the attempt's start
  // (the state's `input`; the history shows it as the start's `input`).
  const input = task.input ?? (started.length ? started[started.length - 1].data.input : undefined);
  const agentId = /agent\(id=([^,)]+)/.exec(def?.use ?? "")?.[1];
  const agent = agentId ? agents.find((a) => a.id === agentId) : undefined;
  const calls = events.filter((e) => e.type.startsWith("tool.") || e.type.startsWith("agent."));
  const agentSteps = calls.findLast((e) => e.type === "agent.success")?.data?.steps;
  const toolCalls = events.filter((e) => e.type === "agent.tool_call_ended");
  return ui`<aside class="task-panel" aria-label=${`Task ${task.task_id}`} id="task-panel">
    <header>
      <h2><${Status} status=${task.status} /> ${task.task_id}</h2>
      <button class="plain" onClick=${onClose} aria-label="Close the task">✕</button>
    </header>
    <dl class="facts">
      <div><dt>Attempts</dt><dd>${task.attempts}</dd></div>
      <div><dt>Started</dt><dd>${formatTime(task.started_at)}</dd></div>
      <div><dt>Duration</dt><dd>${formatDuration(durationOf(task.started_at, task.ended_at))}</dd></div>
      ${agentSteps ? ui`<div><dt>Loop steps</dt><dd id="agent-steps">${agentSteps}</dd></div>` : null}
      ${
    task.waiting_for
      ? ui`
        <div>
          <dt>Waits for</dt>
          <dd><code>${task.waiting_for}</code></dd>
        </div>
      `
      : null
  }
      ${
    agent
      ? ui`
        <div>
          <dt>Model</dt>
          <dd id="agent-model">${modelName(agent)}</dd>
        </div>
      `
      : null
  }
      ${
    task.usage
      ? ui`
        <div>
          <dt>Tokens</dt>
          <dd>${formatUsage(task.usage)}</dd>
        </div>
      `
      : null
  }
      ${
    task.usage?.cost !== undefined
      ? ui`
        <div>
          <dt>Cost</dt>
          <dd id="task-cost">${formatCost(task.usage.cost)}</dd>
        </div>
      `
      : null
  }
    </dl>
    ${
    input !== undefined
      ? ui`
        <details open class="task-input" id="task-input">
          <summary>Input</summary>
          <${JsonView} value=${input} />
        </details>
      `
      : ui`
        <details open class="task-input">
          <summary>Input, as declared (<code>with</code>; not recorded for this task)</summary>
          <${JsonView}
            value=${def?.with ?? null}
          />
        </details>
      `
  }
    <details open class="task-output"><summary>Output</summary><${JsonView} value=${task.output} /></details>
    ${
    task.error
      ? ui`
        <details open>
          <summary>Error</summary>
          <${JsonView} value=${task.error} />
        </details>
      `
      : null
  }
    ${toolCalls.length ? ui`<${ToolCalls} events=${toolCalls} />` : null}
    ${
    calls.length
      ? ui`
        <details>
          <summary>Agent and tool events (${calls.length})</summary>
          <${EventList} events=${calls} />
        </details>
      `
      : null
  }
    <details open><summary>Logs (${logs.length})</summary><${LogList} logs=${logs} /></details>
  </aside>`;
}

const formatUsage = (u) => `${u.input_tokens} in · ${u.output_tokens} out · ${u.total_tokens} total`;

/** Costs are in the models' `price` currency, whatever it is: no symbol. */
const formatCost = (cost) => cost.toFixed(cost < 0.01 ? 6 : 4);

/** The live text of each agent task's current reply, by task execution id (a new turn starts it over). */
function withDelta(all, delta) {
  const key = delta.task?.execId ?? "";
  const current = all[key];
  const text = current && current.turn === delta.turn ? current.text + delta.text : delta.text;
  return { ...all, [key]: { turn: delta.turn, text } };
}

/** What each running agent task's model is writing now, as it streams (not stored: gone once it ends). */
function Thinking({ tasks, thinking }) {
  const running = tasks.filter((t) => t.status === "RUNNING" && thinking[t.exec_id]);
  if (!running.length) return null;
  return ui`<section class="agent-thinking" id="agent-thinking" aria-label="Agents writing">${
    running.map((t) =>
      ui`<div class="thinking-item" data-task=${t.task_id}><strong>${t.task_id}</strong> <span class="muted small">turn ${
        thinking[t.exec_id].turn
      }</span><p class="mono small">${thinking[t.exec_id].text}</p></div>`
    )
  }</section>`;
}

/** Turn, then the call's place in its reply (JSON leaves a 0 index out). */
const callOrder = (e) => [Number(e.data?.turn ?? 0), Number(e.data?.call?.index ?? 0)];

/**
 * The tool calls of an agent's loop, the agent's own tools and MCP tools alike, in the order the model asked
 * for them, each with its input: the panel showed the outputs only, in the order the calls ended, and 300
 * calls of one tool in a turn could not be told apart (outside review rev35).
 */
function ToolCalls({ events }) {
  const ordered = [...events].sort((a, b) => {
    const [turnA, indexA] = callOrder(a);
    const [turnB, indexB] = callOrder(b);
    return turnA - turnB || indexA - indexB;
  });
  return ui`<details open class="tool-calls" id="tool-calls">
    <summary>Tool calls (${events.length})</summary>
    <ol>${
    ordered.map((e) => {
      const call = e.data?.call ?? {};
      const [turn, index] = callOrder(e);
      return ui`<li data-tool=${call.toolId}>
        <span class="muted small">turn ${turn} · call ${index + 1}</span> <code>${call.toolId}</code>
        ${
        call.mcpServer
          ? ui`<span class="tag" title="an MCP server's tool">mcp ${call.mcpServer}</span>`
          : null
      }
        <span class="muted small">${formatDuration(Number(e.data?.durationMs ?? 0))}</span>
        <${JsonView} label="input" value=${call.input ?? null} />
        ${
        e.data?.error
          ? ui`<span class="error-text"><bdi>${e.data.error.code}</bdi>: <bdi>${e.data.error.message}</bdi></span>`
          : ui`<${JsonView} label="output" value=${e.data?.output ?? null} open=${false} />`
      }
      </li>`;
    })
  }</ol>
  </details>`;
}

function EventList({ events }) {
  if (!events.length) return ui`<p class="muted">No events.</p>`;
  return ui`<ol class="events" id="events">${
    events.map((e) =>
      ui`
        <li>
          <details>
            <summary><span class="mono small">#${e.seq}</span> <code>${e.type}</code> <span class="muted small">${
        formatTime(e.time)
      }${e.data?.task?.id ? ` · ${e.data.task.id}` : ""}</span></summary>
            <${JsonView} value=${e.data} open=${false} />
          </details>
        </li>
      `
    )
  }</ol>`;
}

function LogList({ logs }) {
  if (logs === null) return ui`<p class="muted">Loading…</p>`;
  if (!Array.isArray(logs)) return ui`<${ErrorBox} error=${logs} context="Logs are not available" />`;
  if (!logs.length) return ui`<p class="muted">No log records.</p>`;
  return ui`<ol class="logs mono small">${
    logs.map((l) =>
      ui`<li class=${`log-${l.level}`}><span class="muted">${formatTime(l.time)}</span> <b>${l.level}</b> ${
        l.task_id ? ui`<span class="muted">[${l.task_id}]</span> ` : null
      }<bdi>${l.message}</bdi></li>`
    )
  }</ol>`;
}
