/**
 * `compozy executions list|show|cancel|signal`: inspect and control executions on a running server.
 *
 * @module
 */
import type { ExecutionState } from "../../engine/state/execution_state.ts";
import { ApiClient } from "../api_client.ts";
import { CliError } from "../cli_error.ts";
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
  if (options.json) {
    console.log(JSON.stringify(page, null, 2));
    return 0;
  }
  const paint = paintFor();
  const rows = page.items.map((s) => [s.exec_id, s.status, s.workflow_id, s.started_at ?? "", duration(s)]);
  printTable(["EXEC_ID", "STATUS", "WORKFLOW", "STARTED", "TOOK"], rows, paint);
  if (page.next_cursor) console.log(paint.dim(`more: --cursor ${page.next_cursor}`));
  return 0;
}

export async function runExecutionsShow(execId: string, options: RemoteOptions): Promise<number> {
  const state = await api(options).state(execId);
  if (options.json) {
    console.log(JSON.stringify(state, null, 2));
    return 0;
  }
  const paint = paintFor();
  console.log(
    `${paint.bold(state.exec_id)}  ${state.workflow_id}  ${colourStatus(state.status, paint)}  ${
      duration(state)
    }`,
  );
  console.log(`started ${state.started_at ?? "-"}  ended ${state.ended_at ?? "-"}`);
  console.log(`input   ${JSON.stringify(state.input)}`);
  if (state.output !== null && state.output !== undefined) {
    console.log(`output  ${JSON.stringify(state.output)}`);
  }
  if (state.error) console.log(paint.red(`error   ${state.error.code}: ${state.error.message}`));
  if (state.tasks.length > 0) {
    console.log("");
    printTable(
      ["TASK", "STATUS", "ATTEMPTS", "TOOK", "ERROR"],
      state.tasks.map((t) => [
        t.task_id,
        t.status,
        String(t.attempts),
        duration(t),
        t.error ? `${t.error.code}: ${t.error.message}` : "",
      ]),
      paint,
    );
  }
  return 0;
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
  if (!options.exec === !options.all) {
    throw new CliError(
      "Say where the signal goes: --exec <exec_id> for one execution, or --all for every waiting one",
    );
  }
  let payload: unknown = null;
  if (options.payload !== undefined) {
    try {
      payload = JSON.parse(options.payload);
    } catch (e) {
      throw new CliError(`--payload is not valid JSON: ${(e as Error).message}`);
    }
  }
  const client = api(options);
  const signal = encodeURIComponent(signalId);
  if (options.exec) {
    await client.request(
      "POST",
      `/api/executions/${encodeURIComponent(options.exec)}/signals/${signal}`,
      payload,
    );
    console.log(
      options.json
        ? JSON.stringify({ delivered_to: [options.exec] })
        : `signal '${signalId}' sent to ${options.exec}`,
    );
    return 0;
  }
  const result = await client.request<{ delivered_to: string[] }>("POST", `/api/signals/${signal}`, payload);
  if (options.json) console.log(JSON.stringify(result));
  else {console.log(
      `signal '${signalId}' delivered to ${result.delivered_to.length} execution(s)${
        result.delivered_to.map((id) => `\n  ${id}`).join("")
      }`,
    );}
  return 0;
}

function api(options: RemoteOptions): ApiClient {
  return new ApiClient(options.server, options.apiKey);
}

function duration(s: { started_at: string | null; ended_at: string | null }): string {
  if (!s.started_at) return "";
  const end = s.ended_at ? Date.parse(s.ended_at) : Date.now();
  return formatMs(end - Date.parse(s.started_at)) + (s.ended_at ? "" : "…");
}

function colourStatus(status: string, paint: Paint): string {
  if (status === "SUCCESS") return paint.green(status);
  if (["FAILED", "TIMED_OUT"].includes(status)) return paint.red(status);
  if (["CANCELED", "PAUSED", "WAITING"].includes(status)) return paint.yellow(status);
  return status;
}

/** Columns padded to their widest cell; the second column is a status, coloured after padding. */
function printTable(header: string[], rows: string[][], paint: Paint): void {
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
