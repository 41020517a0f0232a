/**
 * `compozy run <workflow>`: starts an execution on a running server. With `--wait` it follows the
 * execution's events live, prints one line per step (and, as it streams, the text of each agent reply on
 * its own line), then the output; the exit code says how it ended
 * (0 SUCCESS, 1 any other end or a wait that ran out).
 *
 * @module
 */
import { resolve } from "node:path";
import { setLongTimeout } from "../../engine/long_timer.ts";
import { isTerminal } from "../../engine/state/execution_state.ts";
import { ApiClient } from "../api_client.ts";
import { CliError, EXIT_INTERNAL, EXIT_USER_ERROR } from "../cli_error.ts";
import { parseJsonFlag } from "../json_flag.ts";
import { cleanForTerminal } from "../../pkg/logger/mod.ts";
import { EventLines, formatMs } from "../event_line.ts";
import { paintFor } from "../terminal.ts";
import { ThinkingLine } from "../thinking_line.ts";

export interface RunOptions {
  workflow: string;
  /** The input as JSON text. */
  input?: string;
  /** A JSON file holding the input, relative to `cwd` unless absolute. */
  inputFile?: string;
  /** The project folder (`--cwd`): where a relative `--input-file` is read, as `deploy --bundle` is. */
  cwd: string;
  wait: boolean;
  timeoutMs: number;
  idempotencyKey?: string;
  json: boolean;
  server: string;
  apiKey?: string;
}

export async function runRun(options: RunOptions): Promise<number> {
  const input = await readInput(options);
  const api = new ApiClient(options.server, options.apiKey);
  const started = performance.now();
  const { exec_id: execId } = await api.request<{ exec_id: string }>(
    "POST",
    `/api/workflows/${encodeURIComponent(options.workflow)}/executions`,
    { input },
    options.idempotencyKey ? { "idempotency-key": options.idempotencyKey } : {},
  );
  if (!options.wait) {
    console.log(options.json ? JSON.stringify({ exec_id: execId }) : execId);
    return 0;
  }
  const paint = paintFor();
  const lines = new EventLines(paint);
  const thinking = new ThinkingLine(paint);
  // Not AbortSignal.timeout: like setTimeout it fires at once past 2^31-1 ms (about 24.8 days), so
  // `--timeout 30d` ended the wait before it began and said "still RUNNING after 43200m0s".
  const waitEnd = new AbortController();
  const deadline = waitEnd.signal;
  const timer = setLongTimeout(() => waitEnd.abort(), options.timeoutMs);
  try {
    await api.followEvents(
      execId,
      (event) => {
        if (options.json) return;
        if (!("seq" in event)) return write(thinking.delta(event));
        const line = lines.format(event);
        if (line) write(`${thinking.close()}${line}\n`);
      },
      deadline,
      { deltas: !options.json },
    );
  } catch (e) {
    if (!deadline.aborted) throw e;
  } finally {
    timer.clear();
  }
  write(thinking.close());
  const state = await api.state(execId);
  if (!deadline.aborted && !isTerminal(state.status)) {
    // The server closed the stream early with no word (a proxy cut it, the server went away between reads):
    // "still RUNNING after <the whole --timeout>" would say the wait ran out, which it did not.
    throw new CliError(
      `The live events of ${execId} ended before the execution did (it is ${state.status})`,
      [`follow it with: compozy executions show ${execId}`],
      EXIT_INTERNAL,
    );
  }
  if (options.json) {
    console.log(JSON.stringify(state, null, 2));
  } else if (!isTerminal(state.status)) {
    console.log(paint.yellow(`still ${state.status} after ${formatMs(options.timeoutMs)}; follow it with:`));
    console.log(`  compozy executions show ${execId}`);
  } else {
    const took = formatMs(performance.now() - started);
    const status = state.status === "SUCCESS" ? paint.green(state.status) : paint.red(state.status);
    console.log(`${status} in ${took}  ${paint.dim(execId)}`);
    // The live lines above already showed the error in full when they saw it.
    if (state.error && !lines.hasShown(state.error.message)) {
      console.log(paint.red(cleanForTerminal(`error: ${state.error.code}: ${state.error.message}`)));
    }
    if (state.output !== null && state.output !== undefined) {
      // JSON escapes C0 controls but not ESC's 8-bit twin (U+009B) and its kin: each line goes through the
      // sanitizer too (the newlines between lines are JSON's own).
      console.log(JSON.stringify(state.output, null, 2).split("\n").map(cleanForTerminal).join("\n"));
    }
  }
  return state.status === "SUCCESS" ? 0 : 1;
}

/** Writes all of `text` to stdout, which may take a pipe's writes in parts; no newline is added. */
function write(text: string): void {
  let bytes = new TextEncoder().encode(text);
  while (bytes.length > 0) bytes = bytes.subarray(Deno.stdout.writeSync(bytes));
}

async function readInput(options: RunOptions): Promise<unknown> {
  if (options.input !== undefined && options.inputFile !== undefined) {
    throw new CliError("Give --input or --input-file, not both");
  }
  let text = options.input;
  let where = "--input";
  if (options.inputFile !== undefined) {
    where = options.inputFile;
    const path = resolve(options.cwd, options.inputFile);
    try {
      // A byte order mark (Notepad, PowerShell's Out-File) is no part of the JSON (RFC 8259 lets a reader
      // ignore it): JSON.parse refused it as a token the terminal does not show.
      text = (await Deno.readTextFile(path)).replace(/^\uFEFF/, "");
    } catch (e) {
      throw new CliError(`Cannot read ${path}: ${(e as Error).message}`, [], EXIT_USER_ERROR, { cause: e });
    }
  }
  if (text === undefined) return {};
  return parseJsonFlag(text, where);
}
