/**
 * `compozy executions list|show|logs|cancel|pause|resume|rerun|signal`: inspect and control executions on a
 * running server.
 *
 * Human output shows every stored text (a tool's console lines and error messages, ids, inputs) through the
 * logger's `cleanForTerminal`: escape sequences a tool wrote are shown as text, never acted on by the
 * terminal (red team 7, R4b). `--json` prints what the API returned, byte for byte.
 *
 * @module
 */
import type { ExecutionState, TaskExecutionState } from "../../engine/state/execution_state.ts";
import { closest } from "../../engine/domain/project/suggest.ts";
import { ApiClient } from "../api_client.ts";
import { CliError } from "../cli_error.ts";
import { parseJsonFlag } from "../json_flag.ts";
import { cleanForTerminal as text } from "../../pkg/logger/mod.ts";
import { formatMs } from "../event_line.ts";
import { type Paint, paintFor } from "../terminal.ts";

export interface RemoteOptions {
  server: string;
  apiKey?: string;
  json: boolean;
}

export interface ListOptions extends RemoteOptions {
  workflow?: string;
  status?: string;
  limit?: number;
  cursor?: string;
}

export async function runExecutionsList(options: ListOptions): Promise<number> {
  const query = new URLSearchParams();
  if (options.workflow) query.set("workflow_id", options.workflow);
  if (options.status) query.set("status", options.status.toUpperCase());
  if (options.limit) query.set("limit", String(options.limit));
  if (options.cursor) query.set("cursor", options.cursor);
  const page = await api(options).request<{ items: ExecutionState[]; next_cursor: string | null }>(
    "GET",
    `/api/executions?${query}`,
  );
  if (options.workflow && page.items.length === 0) await checkWorkflowExists(options, options.workflow);
  if (options.json) {
    console.log(JSON.stringify(page, null, 2));
    return 0;
  }
  const paint = paintFor();
  const rows = page.items.map((s) => [s.exec_id, s.status, s.workflow_id, s.started_at ?? "", duration(s)]);
  printTable(["EXEC_ID", "STATUS", "WORKFLOW", "STARTED", "TOOK"], rows, paint);
  if (page.next_cursor) console.log(paint.dim(`more: ${nextPageFlags(options, page.next_cursor)}`));
  return 0;
}

/**
 * The flags of the next page: the cursor with the filters and limit of this one. The cursor alone (as once
 * printed) read the next page of the unfiltered list, other workflows' and statuses' executions among it.
 */
function nextPageFlags(options: ListOptions, cursor: string): string {
  return [
    ...(options.workflow ? [`--workflow ${text(options.workflow)}`] : []),
    ...(options.status ? [`--status ${text(options.status.toUpperCase())}`] : []),
    ...(options.limit ? [`--limit ${options.limit}`] : []),
    `--cursor ${cursor}`,
  ].join(" ");
}

export async function runExecutionsShow(execId: string, options: RemoteOptions): Promise<number> {
  const client = api(options);
  const state = await client.state(execId);
  if (options.json) {
    console.log(JSON.stringify(state, null, 2));
    return 0;
  }
  const paint = paintFor();
  console.log(
    `${paint.bold(text(state.exec_id))}  ${text(state.workflow_id)}  ${
      colourStatus(text(state.status), paint)
    }  ${duration(state)}`,
  );
  console.log(`started ${state.started_at ?? "-"}  ended ${state.ended_at ?? "-"}`);
  if (state.rerun_of) console.log(`re-run of ${text(state.rerun_of)}`);
  console.log(`input   ${text(JSON.stringify(state.input))}`);
  if (state.output !== null && state.output !== undefined) {
    console.log(`output  ${text(JSON.stringify(state.output))}`);
  }
  if (state.error) console.log(paint.red(text(`error   ${state.error.code}: ${state.error.message}`)));
  const waiting = state.tasks.filter((t) => t.status === "WAITING");
  if (waiting.length > 0) {
    for (const line of await describeWaits(client, state, waiting)) console.log(paint.yellow(line));
  }
  if (state.tasks.length > 0) {
    console.log("");
    printTable(
      ["TASK", "STATUS", "ATTEMPTS", "TOOK", "OUTPUT / ERROR"],
      state.tasks.map((t) => [t.task_id, t.status, String(t.attempts), duration(t), result(t)]),
      paint,
    );
  }
  return 0;
}

/** A finished task's output, or its error, on one line of bounded width. */
function result(t: TaskExecutionState): string {
  if (t.error) return `${t.error.code}: ${t.error.message}`;
  if (t.status !== "SUCCESS" || t.output === undefined || t.output === null) return "";
  const json = JSON.stringify(t.output);
  return json.length > 80 ? `${json.slice(0, 77)}...` : json;
}

/**
 * `waiting  <task>: signal '<id>' when <condition>, times out at <time> (in 4m 58s), then <task>` per waiting
 * task. The signal comes from the state, the condition and `on_timeout` from the definition, the deadline
 * from the wait's event (none of them is in the state alone).
 */
async function describeWaits(
  client: ApiClient,
  state: ExecutionState,
  waiting: TaskExecutionState[],
): Promise<string[]> {
  // Each half only adds detail to the waits the state already shows, so a failed read is said, not fatal.
  const unread: string[] = [];
  const orNote = (what: string) => (error: unknown) => {
    unread.push(`${what}: ${error instanceof Error ? error.message : String(error)}`);
    return undefined;
  };
  const [definition, history] = await Promise.all([
    client.request<{ tasks?: unknown[] }>(
      "GET",
      `/api/workflows/${encodeURIComponent(state.workflow_id)}`,
    ).catch(orNote("the workflow's definition (conditions, on_timeout)")),
    client.events(state.exec_id, (e) => e.type === "task.waiting_started").catch(
      orNote("the execution's history (deadlines)"),
    ),
  ]);
  const tasks = definition?.tasks ?? [];
  return waiting.map((t) => {
    const config = findTask(tasks, t.task_id);
    const started = history?.filter((e) =>
      e.type === "task.waiting_started" &&
      (e.data as { task?: { execId?: string } })?.task?.execId === t.exec_id
    ).at(-1);
    const deadline = Number((started?.data as { deadlineUnixMs?: string | number })?.deadlineUnixMs ?? 0);
    const what = t.waiting_for ? `signal '${text(t.waiting_for)}'` : "its sleep to end";
    const condition = typeof config?.condition === "string" ? ` when ${text(config.condition)}` : "";
    const timeout = deadline > 0
      ? `, times out at ${timeOut(deadline)}`
      : t.waiting_for && history
      ? ", no time-out"
      : "";
    const then = config?.on_timeout && deadline > 0 ? `, then task '${text(config.on_timeout)}'` : "";
    const send = t.waiting_for
      ? `\n  send it: compozy executions signal ${text(t.waiting_for)} --exec ${
        text(state.exec_id)
      } --payload '{...}'`
      : "";
    return `waiting ${text(t.task_id)}: ${what}${condition}${timeout}${then}${send}`;
  }).concat(unread.map((why) => `  (not shown: could not read ${text(why)})`));
}

interface TaskShape {
  id?: string;
  condition?: unknown;
  on_timeout?: string;
  tasks?: unknown[];
  task?: unknown;
  routes?: Record<string, unknown>;
}

/** A task by id anywhere in a definition (children of parallel, composite, collection and routes too). */
function findTask(tasks: unknown[], id: string): TaskShape | undefined {
  for (const raw of tasks) {
    const task = raw as TaskShape;
    if (typeof task !== "object" || task === null) continue;
    if (task.id === id) return task;
    const nested = [
      ...(task.tasks ?? []),
      ...(task.task ? [task.task] : []),
      ...Object.values(task.routes ?? {}),
    ];
    const found = findTask(nested, id);
    if (found) return found;
  }
  return undefined;
}

export interface LogsOptions extends RemoteOptions {
  follow: boolean;
  /** How often --follow asks for new records. */
  intervalMs?: number;
}

/** Log records of an execution, every page of them; `--follow` keeps printing new ones until it ends. */
export async function runExecutionsLogs(execId: string, options: LogsOptions): Promise<number> {
  const client = api(options);
  const paint = paintFor();
  // The page being read: a `next_cursor` moves it on; at the end (null) it stays, so that --follow asks
  // for that page again and prints only the records past the last one printed.
  let cursor: string | undefined;
  let lastSeq = 0;
  let printed = 0;
  let ended = false;
  for (;;) {
    const query = `exec_id=${encodeURIComponent(execId)}&limit=5000` +
      (cursor === undefined ? "" : `&cursor=${encodeURIComponent(cursor)}`);
    const page = await client.request<{ items: LogLine[]; next_cursor: string | null }>(
      "GET",
      `/api/logs?${query}`,
    );
    for (const record of page.items.filter((r) => r.seq > lastSeq)) {
      console.log(options.json ? JSON.stringify(record) : formatLogLine(record, paint));
      lastSeq = record.seq;
      printed++;
    }
    if (page.next_cursor !== null) {
      cursor = page.next_cursor;
      continue;
    }
    if (!options.follow || ended) break;
    // Once the end is seen, the page is read once more: records written just before the end are in it.
    ended = isEnded((await client.state(execId)).status);
    if (!ended) await new Promise((r) => setTimeout(r, options.intervalMs ?? 1_000));
  }
  if (printed === 0 && !options.follow && !options.json) {
    console.error(
      `no log records for ${execId}: its tools printed nothing (console.log in a tool is a record)`,
    );
  }
  return 0;
}

interface LogLine {
  seq: number;
  time: string;
  level: string;
  message: string;
  category: string;
  task_id: string | null;
}

function formatLogLine(record: LogLine, paint: Paint): string {
  const level = record.level.toUpperCase().padEnd(5);
  const colour = record.level === "error" || record.level === "fatal"
    ? paint.red
    : record.level === "warn"
    ? paint.yellow
    : (s: string) => s;
  const where = record.task_id ? ` ${record.task_id}` : "";
  return `${paint.dim(text(record.time.slice(11, 23)))} ${colour(text(level))} ${
    paint.dim(text(record.category + where))
  } ${text(record.message)}`;
}

function isEnded(status: string): boolean {
  return ["SUCCESS", "FAILED", "CANCELED", "TIMED_OUT"].includes(status);
}

/** `pause` or `resume`: the command is recorded; the execution's state follows. */
export async function runExecutionsControl(
  action: "pause" | "resume",
  execId: string,
  options: RemoteOptions,
): Promise<number> {
  await api(options).request("POST", `/api/executions/${encodeURIComponent(execId)}/${action}`);
  console.log(
    options.json
      ? JSON.stringify({ exec_id: execId, requested: action })
      : `${action} requested for ${execId}`,
  );
  return 0;
}

export interface RerunOptions extends RemoteOptions {
  /** A new input, as JSON; default: the first execution's input. */
  input?: string;
}

/** Starts the same workflow again (API.md `POST /api/executions/{exec_id}/rerun`) and prints the new id. */
export async function runExecutionsRerun(execId: string, options: RerunOptions): Promise<number> {
  let body: { input?: unknown } | undefined;
  if (options.input !== undefined) {
    body = { input: parseJsonFlag(options.input, "--input") };
  }
  const { exec_id: newId } = await api(options).request<{ exec_id: string }>(
    "POST",
    `/api/executions/${encodeURIComponent(execId)}/rerun`,
    body,
  );
  if (options.json) console.log(JSON.stringify({ exec_id: newId, rerun_of: execId }));
  else {
    console.log(newId);
    console.error(
      paintFor(Deno.stderr).dim(`re-run of ${execId}; follow it: compozy executions show ${newId}`),
    );
  }
  return 0;
}

/** An empty list for `--workflow X` is either "none yet" or a typo; ask the server which. */
async function checkWorkflowExists(options: RemoteOptions, workflowId: string): Promise<void> {
  const client = api(options);
  const { items } = await client.request<{ items: { id: string }[] }>("GET", "/api/workflows");
  const ids = items.map((w) => w.id);
  if (ids.includes(workflowId)) return;
  const near = closest(workflowId, ids);
  throw new CliError(
    `unknown workflow '${workflowId}'${near ? ` (did you mean '${near}'?)` : ""}`,
    [`workflows on ${options.server}: ${ids.join(", ") || "(none)"}`],
  );
}

export async function runExecutionsCancel(
  execId: string,
  options: RemoteOptions & { reason?: string },
): Promise<number> {
  await api(options).request("POST", `/api/executions/${encodeURIComponent(execId)}/cancel`, {
    ...(options.reason ? { reason: options.reason } : {}),
  });
  console.log(
    options.json ? JSON.stringify({ exec_id: execId, canceled: true }) : `cancel requested for ${execId}`,
  );
  return 0;
}

export interface SignalOptions extends RemoteOptions {
  exec?: string;
  all: boolean;
  payload?: string;
}

export async function runExecutionsSignal(signalId: string, options: SignalOptions): Promise<number> {
  if (options.exec && options.all) {
    throw new CliError(
      "--exec and --all exclude each other: --exec <exec_id> for one execution, or --all for every waiting one",
    );
  }
  if (!options.exec && !options.all) {
    throw new CliError(
      "Say where the signal goes: --exec <exec_id> for one execution, or --all for every waiting one",
    );
  }
  let payload: unknown = null;
  if (options.payload !== undefined) {
    payload = parseJsonFlag(options.payload, "--payload");
  }
  const client = api(options);
  const signal = encodeURIComponent(signalId);
  if (options.exec) {
    const { waiting } = await client.request<{ waiting: number }>(
      "POST",
      `/api/executions/${encodeURIComponent(options.exec)}/signals/${signal}`,
      payload,
    );
    console.log(
      options.json
        ? JSON.stringify({ delivered_to: [options.exec], waiting })
        : waiting === 0
        ? `signal '${signalId}' sent to ${options.exec}, but none of its tasks waits for it: it changes nothing`
        : `signal '${signalId}' sent to ${options.exec}, to ${waiting} waiting task(s)${CONDITION_NOTE}`,
    );
    return 0;
  }
  const result = await client.request<{ delivered_to: string[] }>("POST", `/api/signals/${signal}`, payload);
  if (options.json) console.log(JSON.stringify(result));
  else if (result.delivered_to.length === 0) {
    console.log(`signal '${signalId}' sent, but no execution waits for it: it changes nothing`);
  } else {
    console.log(
      `signal '${signalId}' delivered to ${result.delivered_to.length} waiting execution(s)${CONDITION_NOTE}${
        result.delivered_to.map((id) => `\n  ${id}`).join("")
      }`,
    );
  }
  return 0;
}

/** A delivered signal may still be refused by a wait's condition; where to see that. */
const CONDITION_NOTE = "; a wait with a condition takes it only if the condition is true " +
  "(the server's log says when it is not)";

function api(options: RemoteOptions): ApiClient {
  return new ApiClient(options.server, options.apiKey);
}

function duration(s: { started_at: string | null; ended_at: string | null }): string {
  if (!s.started_at) return "";
  const end = s.ended_at ? Date.parse(s.ended_at) : Date.now();
  const took = end - Date.parse(s.started_at);
  // A time that does not parse (stored by an older version, or by hand) leaves the length unknown.
  if (!Number.isFinite(took)) return "?";
  return formatMs(took) + (s.ended_at ? "" : "…");
}

/**
 * A deadline as ISO 8601 and the time left, or the raw number when it is no date JavaScript can hold (past
 * year 275760): older versions stored such deadlines, and `show` must still show the rest.
 */
function timeOut(deadline: number): string {
  const date = new Date(deadline);
  if (Number.isNaN(date.getTime())) return `${deadline} (ms since 1970, not a valid date)`;
  return `${date.toISOString()} (in ${formatMs(Math.max(0, deadline - Date.now()))})`;
}

function colourStatus(status: string, paint: Paint): string {
  if (status === "SUCCESS") return paint.green(status);
  if (["FAILED", "TIMED_OUT"].includes(status)) return paint.red(status);
  if (["CANCELED", "PAUSED", "WAITING"].includes(status)) return paint.yellow(status);
  return status;
}

/** Columns padded to their widest cell; the second column is a status, coloured after padding. */
function printTable(header: string[], unclean: string[][], paint: Paint): void {
  const rows = unclean.map((cells) => cells.map(text));
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[], colour: boolean) =>
    cells.map((c, i) => {
      const padded = c.padEnd(widths[i]);
      return colour && i === 1 ? colourStatus(padded.trimEnd(), paint) + padded.slice(c.length) : padded;
    }).join("  ").trimEnd();
  console.log(line(header, false));
  rows.forEach((r) => console.log(line(r, true)));
  if (rows.length === 0) console.log("(none)");
}
