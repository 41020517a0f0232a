/**
 * Runs generated cases on the real engine: a real nats-server, the real runtime with its sandboxed test tool,
 * and the engine either in this process or as `compozy start --role engine` processes that a crash loop
 * SIGKILLs (and sometimes nats-server with them).
 */
import { create } from "@bufbuild/protobuf";
import { jetstreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import {
  createExecutionClient,
  ENGINE_HEALTH_SUBJECT,
  type EngineHandle,
  type ExecutionState,
  startEngine,
} from "../../../engine/mod.ts";
import { loadProject } from "../../../engine/domain/project/mod.ts";
import { Bus, connectNats, provisionJetStream, STREAMS } from "../../../pkg/nats/mod.ts";
import { WorkflowSignalSchema } from "../../../pkg/pb/mod.ts";
import { startRuntime } from "../../../pkg/runtime/service.ts";
import { ToolRunner } from "../../../pkg/runtime/tool_runner.ts";
import { writeProject } from "../../support/engine.ts";
import { spawnEngineProcess } from "../../support/engine_process.ts";
import { startTestNats, type TestNats } from "../../support/nats.ts";
import type { Checkpoint, ReferenceResult } from "../reference/types.ts";
import { projectFiles } from "./cases.ts";
import { type Case, TOOL_ID } from "./generator.ts";
import { stuckReport } from "./stuck_report.ts";

/** One tool call as the test tool logged it when it started. */
export interface LoggedCall {
  exec: string;
  task: string;
  taskExec: string;
  attempt: number;
  at: number;
  input: unknown;
}

/** What the engine did with one case. */
export interface Observed {
  execId: string;
  state: ExecutionState;
  /** Calls of the root execution and its sub-workflows. */
  calls: LoggedCall[];
  /** Calls that started after their task's outcome was stored (crash runs must have none). */
  late: LoggedCall[];
  /** Problems of the run itself (a checkpoint never reached, a refused signal). */
  problems: string[];
  /**
   * Controls the harness could not send: NATS answered none of its tries for 30 s (a nats-server restart at
   * load), so the engine never saw them (see unsentAgain). Also listed in `problems`.
   */
  unsent: string[];
  /**
   * For each checkpoint whose actions were sent: how long after the last of its waits started (its task's
   * `started_at`) the harness saw them all WAITING and sent them, in ms.
   */
  controlLagMs: number[];
  /** Tool-call attempts the history shows failed with `tool_timeout` (by task exec id and attempt). */
  timedOut: Array<{ task: string; taskExec: string; attempt: number }>;
  /**
   * Set when the execution was still running at the harness's first limit and ended in its grace (endOf): how
   * long after that limit it ended, in ms. A case still running after the grace has a problem saying so.
   */
  lateMs?: number;
  /** The sub-workflows the root started: the task that started each (its key), and how each ended. */
  children: Array<{ key: string; workflow: string; status: string; execId: string }>;
  /** The events of the execution and its sub-workflows, one line each (read only for a report). */
  history(): Promise<string[]>;
}

export interface Stack {
  client: Awaited<ReturnType<typeof createExecutionClient>>;
  run(c: Case, expected: ReferenceResult): Promise<Observed>;
  close(): Promise<void>;
  /** SIGKILLs of the engine and of nats-server so far (crash runs). */
  readonly kills: number;
  readonly natsKills: number;
  /** SIGSTOPs of an engine, each ended by a SIGCONT (crash runs with freezes). */
  readonly freezes: number;
  /** When the engine was down longer than a restart may take (an engine that was not healthy in 60 s). */
  readonly outages: ReadonlyArray<{ from: number; to: number }>;
  /** Every time an engine was down or frozen: from its kill (or SIGSTOP) to its restart's first health answer (or SIGCONT), one still going on until now (crash runs). */
  readonly downtimes: ReadonlyArray<Downtime>;
}

export interface Downtime {
  from: number;
  to: number;
}

export interface StackOptions {
  /** SIGKILL the engine process at random moments while cases run (and sometimes nats-server). */
  crashes?: boolean;
  /** Random source for crash moments. */
  random?: () => number;
  /** Cases in flight at once (the kill budget is per round of cases, see startStack). */
  concurrency?: number;
  /**
   * Engine processes sharing the nats-server (default 1): with more than one, the executions are shared by
   * leases (issue 12), and the crashes kill either engine. One engine without crashes runs in this process.
   */
  engines?: number;
  /** With crashes: some kills are SIGSTOPs of 0.5 to 20 s instead, the engine then SIGCONTed (a stale holder). */
  freezes?: boolean;
  /**
   * Awaited before each action of a checkpoint (its index in the checkpoint's actions): a test holds an
   * action there to force an interleaving with the engine.
   */
  beforeAction?: (execId: string, index: number) => Promise<void>;
  /** Awaited before the harness looks for each checkpoint (its index): a test holds the harness back there. */
  beforeCheckpoint?: (execId: string, index: number) => Promise<void>;
}

/** Starts nats-server, the runtime and an engine for a project holding `cases`. */
export async function startStack(cases: Case[], options: StackOptions = {}): Promise<Stack> {
  const logDir = await Deno.makeTempDir({ prefix: "compozy-model-calls-" });
  const logFile = `${logDir}/calls.jsonl`;
  await Deno.writeTextFile(logFile, "");
  const dir = await writeProject(projectFiles(cases, logFile));
  const removeDirs = async () => {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
    await Deno.remove(logDir, { recursive: true }).catch(() => {});
  };
  const nats = await startTestNats().catch(async (e) => {
    await removeDirs();
    throw e;
  });
  // What is up so far, stopped in reverse order if a later part fails to start (a NATS request timing out
  // on a loaded machine): a run of many batches goes on with the next one (check.ts).
  const started: Array<() => Promise<void>> = [removeDirs, () => nats.stop()];
  const stopAll = async () => {
    for (const stop of [...started].reverse()) await stop();
  };
  try {
    return await startParts(cases, options, dir, logFile, nats, started, stopAll);
  } catch (e) {
    await stopAll();
    throw new Error("the stack did not start", { cause: e });
  }
}

async function startParts(
  cases: Case[],
  options: StackOptions,
  dir: string,
  logFile: string,
  nats: TestNats,
  started: Array<() => Promise<void>>,
  stopAll: () => Promise<void>,
): Promise<Stack> {
  const project = await loadProject(dir);
  const nc = await connectNats(nats.url, { name: "model-test" });
  started.push(() => nc.close());
  // The engine refreshes a lease every ackWait/3, so a short lease goes only with the crash runs' short
  // ack wait (there it lets a restarted engine take the executions back quickly).
  await provisionJetStream(nc, options.crashes ? { ttlMs: { compozy_leases: 3_000 } } : {});
  const bus = new Bus(nc, { source: "model-test" });
  // A pool large enough that no call waits for a process: the wait counts against the tool's time-out, which
  // would make a case's outcome depend on the machine's load rather than on the engine.
  const runner = new ToolRunner({ maxProcesses: 24, maxWarmPerKey: 12 });
  // Closed by the runtime once it runs; before that (a warm-up failed), on its own.
  const closeRunner = () => runner.close();
  started.push(closeRunner);
  const tool = project.tools.get(TOOL_ID)!;
  await Promise.all(Array.from({ length: 10 }, (_, i) =>
    runner.run({
      toolId: TOOL_ID,
      executePath: tool.executePath,
      permissions: tool.permissions,
      input: { k: "warm-up", do: "ok", v: i },
      timeoutMs: 60_000,
      context: {
        workflowId: "warm-up",
        workflowExecId: "warm-up",
        taskId: "warm-up",
        taskExecId: `${i}`,
        attempt: 1,
      },
    })));
  const runtime = startRuntime({ nc, bus, runner });
  started.splice(started.indexOf(closeRunner), 1, () => runtime.stop());
  const client = await createExecutionClient({ nc, bus, project });
  const engines = options.engines ?? 1;
  const processes = options.crashes || engines > 1
    ? new EngineProcesses(
      dir,
      nats,
      nc,
      options.random ?? Math.random,
      // About 4.5 kills per round of cases in flight together: each case sees a few kills whatever the batch
      // size, and a batch run all at once is not killed for longer than its cases may take.
      Math.max(3, Math.ceil((4.5 * cases.length) / Math.max(1, options.concurrency ?? 3))),
      engines,
      options.freezes ?? false,
    )
    : undefined;
  const engine = options.crashes ? processes : undefined;
  let inProcess: EngineHandle | undefined;
  if (processes) {
    started.push(() => processes.stop());
    await processes.startAll();
  } else {
    inProcess = await startEngine({ nc, bus, project, instanceId: "model-engine" });
    started.push(() => inProcess!.stop());
  }

  let active = 0;
  const run = async (c: Case, expected: ReferenceResult): Promise<Observed> => {
    active++;
    if (active === 1) engine?.startKilling();
    try {
      return await runCase(client, bus, logFile, c, expected, options);
    } finally {
      if (--active === 0) await engine?.stopKilling();
    }
  };
  return {
    client,
    run,
    get kills() {
      return engine?.kills ?? 0;
    },
    get natsKills() {
      return engine?.natsKills ?? 0;
    },
    get freezes() {
      return engine?.freezes ?? 0;
    },
    get outages() {
      return engine?.outages ?? [];
    },
    get downtimes() {
      return engine?.downtimesSoFar() ?? [];
    },
    close: stopAll,
  };
}

async function runCase(
  client: Stack["client"],
  bus: Bus,
  logFile: string,
  c: Case,
  expected: ReferenceResult,
  { beforeAction, beforeCheckpoint }: Pick<StackOptions, "beforeAction" | "beforeCheckpoint">,
): Promise<Observed> {
  const problems: string[] = [];
  const unsent: string[] = [];
  const controlLagMs: number[] = [];
  const { execId } = await client.trigger(c.id, c.input);
  for (const [checkpointIndex, checkpoint] of expected.checkpoints.entries()) {
    await beforeCheckpoint?.(execId, checkpointIndex);
    let waitsStarted = 0;
    // As patient as the wait for the end (endOf): a checkpoint reached late is a slow case, not a stuck one.
    // With 60 s, seed 121055 (a `hang` tool re-run by each of its batch's 12 kills before its wait) reached its
    // wait 69 s in; the harness had given the checkpoint up and never sent the signal, and the wait, which has
    // no time-out, waited for good: read as an execution stuck with nothing driving it.
    const reached = await until(async () => {
      const state = await client.get(execId);
      if (!state || ["SUCCESS", "FAILED", "TIMED_OUT", "CANCELED"].includes(state.status)) return "ended";
      if (timedOutUnseen(checkpoint, expected, state)) return "timed out";
      const waits = state.tasks.filter((t) =>
        t.status === "WAITING" && checkpoint.waiting.includes(t.task_id)
      );
      waitsStarted = Math.max(0, ...waits.map((t) => Date.parse(t.started_at ?? "") || 0));
      return checkpoint.waiting.every((k) => waits.some((t) => t.task_id === k)) ? "reached" : undefined;
    }, CASE_LIMIT_MS + SLOW_GRACE_MS);
    if (reached === "timed out") continue;
    // Ended before the harness saw its waits (a short wait time-out that fired while a killed engine
    // restarted, seeds 121099 and 4123017): the controls of this checkpoint and later ones are not sent, and
    // the end is compared with the reference's as it is. Were the controls needed, the end differs there.
    if (reached === "ended") break;
    if (reached !== "reached") {
      const tasks = (await client.get(execId))?.tasks ?? [];
      const seen = checkpoint.waiting.map((k) =>
        `${k}: ${tasks.find((t) => t.task_id === k)?.status ?? "absent"}`
      );
      problems.push(`checkpoint not reached (${reached ?? "time-out"}): ${seen.join(", ")}`);
      break;
    }
    if (waitsStarted > 0) controlLagMs.push(Date.now() - waitsStarted);
    for (const [index, action] of checkpoint.actions.entries()) {
      await beforeAction?.(execId, index);
      try {
        if (action.kind === "signal") {
          if (action.broadcast) {
            // Once a task reads WAITING its wait is listed (G4, fixed): a broadcast reaches it while it waits.
            // Not once an earlier signal of this checkpoint ended it (the reference says which, see
            // Checkpoint.reaches): that one's wake-up races this broadcast (seeds 1034169 and 34090).
            const reached = await client.broadcastSignal(action.signal, action.payload);
            if (!reached.includes(execId) && checkpoint.reaches[index]) {
              problems.push(`broadcast of ${action.signal} did not reach ${execId}`);
            }
          } else if (action.copy) await unsentAgain(() => sendCopy(bus, execId, c.id, action));
          else await unsentAgain(() => client.signal(execId, action.signal, action.payload, action.id));
        } else if (action.kind === "pause") {
          await unsentAgain(() => client.pause(execId));
          await until(async () => (await client.get(execId))?.status === "PAUSED" || undefined, 30_000);
        } else if (action.kind === "resume") await unsentAgain(() => client.resume(execId));
        else await unsentAgain(() => client.cancel(execId, action.reason));
      } catch (e) {
        // The reference takes a checkpoint's actions at one instant; the engine may end the execution between
        // two of them (seed 1031094: pause, then the signal ended the last task, and the execution ended
        // while paused, as a pause only holds back new tasks; the resume came after). A control refused
        // because the execution already ended is no problem in itself: its end is compared with the
        // reference's. Any other refusal is.
        const ended = (e as Error).name === "ExecutionConflictError" &&
          ["SUCCESS", "FAILED", "TIMED_OUT", "CANCELED"].includes((e as { status?: string }).status ?? "");
        if (!ended || action.kind === "signal") {
          problems.push(`${action.kind} refused: ${(e as Error).message}`);
        }
        if ((e as Error).name === "TimeoutError") unsent.push(`${action.kind}: ${(e as Error).message}`);
      }
    }
  }
  const { state, lateMs } = await endOf((id, ms) => client.waitForEnd(id, ms), execId);
  if (!isEnded(state.status)) {
    const open = state.tasks.filter((t) => !["SUCCESS", "FAILED", "SKIPPED", "CANCELED"].includes(t.status));
    problems.push(
      `still ${state.status} ${
        (CASE_LIMIT_MS + SLOW_GRACE_MS) / 1000
      } s after the harness began waiting for its end (open: ${
        open.map((t) => `${t.task_id} ${t.status}`).join(", ") || "none"
      })`,
    );
  }
  // Sub-workflows of this execution share its correlation id.
  const subIds = Object.keys(c.workflows).filter((id) => id !== c.id);
  const execs = new Set([execId]);
  for (const id of subIds) {
    for (const item of (await readAgain(() => client.list({ workflowId: id }))).items) {
      if (item.correlation_id === execId) execs.add(item.exec_id);
    }
  }
  if (!isEnded(state.status)) {
    // What JetStream holds for it now, while the stack still runs: why nothing drives it.
    const report = await stuckReport(bus.nc, [...execs], execId).catch((e) => [`not read: ${e}`]);
    problems.push(`JetStream of the unfinished execution: ${report.join("; ")}`);
  }
  // The paged history, read while the batch's other executions still write (outside review D4), first.
  problems.push(...await readAgain(() => pagedHistoryProblems(client, execId, state)));
  // Let the state of sub-workflows settle before reading the calls and events.
  const children: Observed["children"] = [];
  const keyOf = new Map(state.tasks.map((t) => [t.exec_id, t.task_id]));
  for (const id of execs) {
    if (id === execId) continue;
    const child = await client.waitForEnd(id, 60_000).catch(() => undefined) ?? await client.get(id);
    if (!child) continue;
    const key = keyOf.get(child.parent?.task_exec_id ?? "") ?? `? (task ${child.parent?.task_exec_id})`;
    children.push({ key, workflow: child.workflow_id, status: child.status, execId: id });
  }
  const calls = (await readCalls(logFile)).filter((call) => execs.has(call.exec));
  problems.push(
    ...lateChildCalls(children, calls, await Promise.all(children.map((c) => client.get(c.execId)))),
  );
  const late = await readAgain(() => lateCalls(client, bus, [...execs], calls));
  const timedOut = await readAgain(() => timedOutAttempts(client, [...execs]));
  // The events of the execution and of its sub-workflows (named by the end of their exec id), in stream order.
  const history = async () => {
    const events = [];
    for (const id of execs) {
      const who = id === execId ? "" : `[${id.slice(-6)}] `;
      for (const e of await readAgain(() => client.events(id))) events.push({ seq: e.seq, who, e });
    }
    return events.sort((a, b) => a.seq - b.seq).map(({ who, e }) => {
      const { metadata: _metadata, workflow: _workflow, task, ...rest } = e.data as Record<string, unknown>;
      const key = (task as { id?: string } | undefined)?.id ?? "";
      return `${e.seq} ${e.time.slice(11)} ${who}${e.type} ${key} ${JSON.stringify(rest).slice(0, 200)}`;
    });
  };
  return { execId, state, lateMs, calls, late, problems, unsent, controlLagMs, timedOut, children, history };
}

/**
 * Every wait of `checkpoint` ended by its own time-out before the harness saw it waiting, as the reference
 * says each of them ends: its actions changed nothing there, and the harness goes on to the next checkpoint
 * rather than wait for these waits for good. Seed 38210 (two engines, freezes): a 300 ms wait whose first
 * driver stored its timer and stopped, taken over, waited 11 ms (the overdue timer ended it) between two of
 * the harness's polls, and the harness waited 240 s for it while the execution waited for the next
 * checkpoint's signal.
 */
export function timedOutUnseen(
  checkpoint: Checkpoint,
  expected: ReferenceResult,
  state: ExecutionState,
): boolean {
  return checkpoint.waiting.every((key) => {
    const task = state.tasks.find((t) => t.task_id === key);
    return task?.status === "FAILED" && task.error?.code === "wait_timeout" &&
      expected.tasks[key]?.code === "wait_timeout";
  });
}

/**
 * A control (signal, pause, resume, cancel) sent again while it fails with a NATS `TimeoutError` for up to 30 s:
 * the client reads the execution's state before it publishes, and a publish that fails throws a PublishError,
 * so a time-out means nothing was sent. At load 26, seed 121069's signal failed so ("signal refused: timeout"),
 * and its wait, which has no time-out, waited for good: read as an execution stuck with nothing driving it.
 */
async function unsentAgain(send: () => Promise<void>): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (true) {
    try {
      return await send();
    } catch (e) {
      if ((e as Error).name !== "TimeoutError" || Date.now() > deadline) throw e;
      await new Promise((r) => setTimeout(r, 250));
    }
  }
}

/** How long the harness waits for a case's end before it looks at what the engine did (see endOf). */
export const CASE_LIMIT_MS = 120_000;
/** How much longer it waits for a case still running at CASE_LIMIT_MS (see endOf). */
export const SLOW_GRACE_MS = 120_000;

/**
 * The execution's end, waited for `limitMs`, then, when it still runs, up to `graceMs` more. A long case on
 * a loaded machine may outlast the first wait (seed 90030 at load 36: 33 sub-workflows four at a time), and
 * its state then, an item WAITING for a child that had started, read like an execution stuck for good: one
 * that ends in the grace was slow, and its end is what is compared (`lateMs`: how long after the first wait
 * it ended); one that does not end is returned as it is, still running.
 */
export async function endOf(
  waitForEnd: (execId: string, timeoutMs: number) => Promise<ExecutionState>,
  execId: string,
  limitMs = CASE_LIMIT_MS,
  graceMs = SLOW_GRACE_MS,
): Promise<{ state: ExecutionState; lateMs?: number }> {
  const first = await waitForEnd(execId, limitMs);
  if (isEnded(first.status)) return { state: first };
  const limitAt = Date.now();
  const state = await waitForEnd(execId, graceMs);
  return isEnded(state.status) ? { state, lateMs: Date.now() - limitAt } : { state };
}

function isEnded(status: string): boolean {
  return ["SUCCESS", "FAILED", "TIMED_OUT", "CANCELED"].includes(status);
}

/** Events per page of the paged reads, some below the 64 a read walks with single gets, some above. */
const PAGE_LIMITS = [17, 50, 64, 100, 1_000];

/**
 * The history as `GET /api/executions/{id}/events` pages it (cursor after cursor, ExecutionClient.eventPage)
 * against one whole read and the execution's state: the same events, ending with the execution's end, with an
 * end event for every task the state shows ended. Outside review D4: a read past 64 events ended a few events
 * short (next_cursor null) while other executions wrote to the stream.
 */
async function pagedHistoryProblems(
  client: Stack["client"],
  execId: string,
  state: ExecutionState,
): Promise<string[]> {
  const problems: string[] = [];
  const limit = PAGE_LIMITS[Math.floor(Math.random() * PAGE_LIMITS.length)];
  const paged = [];
  let cursor: string | undefined;
  for (let pages = 0; pages < 10_000; pages++) {
    const page = await client.eventPage(execId, { cursor, limit });
    paged.push(...page.events);
    if (page.next_cursor === null) break;
    cursor = page.next_cursor;
  }
  const whole = await client.events(execId);
  const seqs = (events: Array<{ seq: number }>) => events.map((e) => e.seq).join(",");
  if (seqs(paged) !== seqs(whole)) {
    problems.push(
      `history: pages of ${limit} hold ${paged.length} events, one whole read ${whole.length} (not the same)`,
    );
  }
  for (const [name, events] of [["paged", paged], ["whole", whole]] as const) {
    const last = events.at(-1)?.type;
    const end = END_EVENTS[state.status];
    if (end && last !== end) {
      problems.push(
        `history (${name}, ${events.length} events): ends with ${last}, not ${end} (${state.status})`,
      );
    }
    const ended = new Set(
      events.filter((e) => TASK_ENDS.has(e.type)).map((e) =>
        (e.data as { task?: { execId?: string } }).task?.execId
      ),
    );
    const missing = state.tasks.filter((t) =>
      ["SUCCESS", "FAILED"].includes(t.status) && !ended.has(t.exec_id)
    );
    if (missing.length) {
      problems.push(
        `history (${name}, ${events.length} events): no end of ${missing.length} ended tasks (${
          missing.slice(0, 3).map((t) => t.task_id).join(", ")
        })`,
      );
    }
  }
  return problems;
}

const END_EVENTS: Record<string, string> = {
  SUCCESS: "workflow.success",
  FAILED: "workflow.failed",
  CANCELED: "workflow.canceled",
  TIMED_OUT: "workflow.timed_out",
};
const TASK_ENDS = new Set(["task.success", "task.failed"]);

/**
 * Tool calls of a sub-workflow that started after it ended CANCELED: its parent gave it up (or ended), and
 * at most the one call in flight then may still start (docs/engine.md, sub-workflows).
 */
function lateChildCalls(
  children: Observed["children"],
  calls: LoggedCall[],
  states: Array<ExecutionState | undefined>,
): string[] {
  const problems: string[] = [];
  for (const [i, child] of children.entries()) {
    const endedAt = states[i]?.ended_at;
    if (child.status !== "CANCELED" || !endedAt) continue;
    const late = calls.filter((c) => c.exec === child.execId && c.at > Date.parse(endedAt));
    if (late.length > 1) {
      problems.push(
        `sub-workflow of ${child.key} (${child.execId}): ${late.length} tool calls started after it was canceled`,
      );
    }
  }
  return problems;
}

async function readCalls(logFile: string): Promise<LoggedCall[]> {
  const text = await Deno.readTextFile(logFile);
  return text.split("\n").filter(Boolean).map((line) => JSON.parse(line));
}

/** Calls that started after their task's success or final failure was stored in EVENTS. */
async function lateCalls(
  client: Stack["client"],
  bus: Bus,
  execs: string[],
  calls: LoggedCall[],
): Promise<LoggedCall[]> {
  const jsm = await jetstreamManager(bus.nc);
  const recordedAt = new Map<string, number>();
  for (const id of execs) {
    for (const event of await client.events(id)) {
      if (event.type !== "task.success" && event.type !== "task.failed") continue;
      const data = event.data as { task?: { id?: string; execId?: string } };
      const stored = await jsm.streams.getMessage(STREAMS.events, { seq: event.seq });
      const at = stored?.timestamp ? new Date(stored.timestamp).getTime() : Date.now();
      const key = `${id}/${data.task?.execId ?? data.task?.id}`;
      if (!recordedAt.has(key)) recordedAt.set(key, at);
    }
  }
  return calls.filter((call) => {
    const at = recordedAt.get(`${call.exec}/${call.taskExec}`);
    return at !== undefined && call.at > at;
  });
}

/** Attempts that failed `tool_timeout`: a task's last (task.failed) or one retried (task.retry_scheduled). */
async function timedOutAttempts(client: Stack["client"], execs: string[]): Promise<Observed["timedOut"]> {
  const found: Observed["timedOut"] = [];
  for (const id of execs) {
    // Only tool tasks: a container fails with its child's code, and it calls no tool itself (seed 1030892).
    const basic = new Set<string>();
    for (const event of await client.events(id)) {
      const data = event.data as {
        task?: { id?: string; execId?: string };
        error?: { code?: string };
        attempt?: number;
        nextAttempt?: number;
        taskType?: string;
      };
      if (event.type === "task.dispatched" && data.taskType === "basic") basic.add(data.task?.execId ?? "");
      // A sub-workflow task is basic too, but it waits for its child (and fails with the child's code).
      if (event.type === "task.waiting_started") basic.delete(data.task?.execId ?? "");
      if (event.type !== "task.failed" && event.type !== "task.retry_scheduled") continue;
      if (data.error?.code !== "tool_timeout" || !data.task?.execId || !basic.has(data.task.execId)) continue;
      // A retry names the attempt it schedules; the one that timed out is the one before.
      const attempt = event.type === "task.retry_scheduled" ? (data.nextAttempt ?? 2) - 1 : data.attempt;
      found.push({ task: data.task.id ?? "", taskExec: data.task.execId, attempt: attempt ?? 1 });
    }
  }
  return found;
}

/**
 * A read of what the case left (its sub-workflows, its events), tried again for up to 30 s when it throws:
 * the case has ended, but the batch's other cases go on and their nats-server kills may cut a read short
 * (seed 1030282: `ConsumerNotFoundError` while the events were walked with a consumer of the killed server).
 */
async function readAgain<T>(read: () => Promise<T>): Promise<T> {
  return (await until(read, 30_000))!;
}

/**
 * Polls `check` every 25 ms until it returns a value or `ms` pass. A check that throws (a NATS request timing
 * out on a loaded machine, or while nats-server restarts) is tried again; the last error is thrown if no check
 * succeeded before the deadline.
 */
async function until<T>(check: () => Promise<T | undefined>, ms: number): Promise<T | undefined> {
  const deadline = Date.now() + ms;
  let failure: unknown;
  while (Date.now() < deadline) {
    try {
      const value = await check();
      failure = undefined;
      if (value !== undefined) return value;
    } catch (e) {
      failure = e;
    }
    await new Promise((r) => setTimeout(r, 25));
  }
  if (failure !== undefined) {
    throw new Error(`polling the engine kept failing: ${(failure as Error)?.stack ?? failure}`, {
      cause: failure,
    });
  }
  return undefined;
}

/**
 * A folder for the crash runs' engine logs, one file per batch (named by its nats-server's port; every engine
 * process of the batch appends to it, with its kills in between), at `COMPOZY_MODEL_ENGINE_LOG_LEVEL`
 * (default `info`). Without it the engines' output is discarded: a stuck execution cannot be explained later.
 */
const ENGINE_LOG = Deno.env.get("COMPOZY_MODEL_ENGINE_LOG");

/** The share of the kill loops' turns that freeze the engine instead (with StackOptions.freezes). */
const FREEZE_SHARE = 0.3;

/**
 * The engine processes of a stack (one, or several sharing its nats-server with leases, issue 12), each
 * with a stable instance id (`model-engine`, or `model-engine-1`, `-2`, … when there are several), which a
 * loop per engine SIGKILLs at random moments while cases run (sometimes with nats-server) and starts again
 * under the same id.
 */
class EngineProcesses {
  readonly #children: Array<Deno.ChildProcess | undefined>;
  #loop?: Promise<void>;
  #killing = false;
  #natsRestarting = false;
  kills = 0;
  freezes = 0;
  natsKills = 0;
  readonly outages: Array<{ from: number; to: number }> = [];
  readonly downtimes: Downtime[] = [];
  /** Per engine: when it was killed, until a restart answers (kills of failed restarts keep it). */
  readonly #downSince: Array<number | undefined>;

  constructor(
    readonly dir: string,
    readonly nats: TestNats,
    readonly nc: NatsConnection,
    readonly random: () => number,
    readonly maxKills: number,
    readonly count: number,
    /** Some of the loops' turns SIGSTOP the engine for a while instead of killing it (see #freeze). */
    readonly freezing: boolean,
  ) {
    this.#children = Array.from({ length: count }, () => undefined);
    this.#downSince = Array.from({ length: count }, () => undefined);
  }

  #instanceId(index: number): string {
    return this.count === 1 ? "model-engine" : `model-engine-${index + 1}`;
  }

  /** Spawns every engine process and resolves once each answers on the health subject. */
  async startAll(): Promise<void> {
    await Promise.all(this.#children.map((_, index) => this.start(index)));
  }

  /**
   * Spawns engine `index` and resolves once it answers on the health subject: every engine answers there,
   * so the answers are read for a moment and this one's instance id looked for among them.
   */
  async start(index: number): Promise<void> {
    this.#spawn(index);
    const instance = this.#instanceId(index);
    const deadline = Date.now() + 60_000;
    while (Date.now() < deadline) {
      try {
        const replies = await this.nc.requestMany(ENGINE_HEALTH_SUBJECT, undefined, {
          strategy: "timer",
          maxWait: 500,
        });
        for await (const reply of replies) {
          if (reply.json<{ instance?: string }>().instance === instance) return;
        }
      } catch {
        // nats-server restarting: asked again below
      }
      await new Promise((r) => setTimeout(r, 100)); // not up yet
    }
    throw new Error(`the engine process ${instance} did not become healthy within 60 s`);
  }

  #spawn(index: number): void {
    this.#children[index] = spawnEngineProcess(this.dir, this.nats.url, {
      instanceId: this.#instanceId(index),
      logLevel: ENGINE_LOG ? (Deno.env.get("COMPOZY_MODEL_ENGINE_LOG_LEVEL") ?? "info") : "error",
      logFile: this.#logFile(index),
    });
  }

  /** One file per engine of the batch: its log lines do not name their instance. */
  #logFile(index: number): string | undefined {
    const port = this.nats.url.split(":").at(-1);
    return ENGINE_LOG && `${ENGINE_LOG}/engine-${port}${this.count === 1 ? "" : `-${index + 1}`}.log`;
  }

  /** A line in engine logs saying what the harness did, so a reader sees where a process ended. */
  async #note(what: string, indexes: number[]): Promise<void> {
    const line = JSON.stringify({ time: new Date().toISOString(), harness: what });
    for (const index of indexes) {
      const file = this.#logFile(index);
      if (file) await Deno.writeTextFile(file, `${line}\n`, { append: true });
    }
  }

  /**
   * One kill loop per engine: each engine is killed after it was up a while and started again, on its own
   * clock, so with several engines one is often down while the others run and take over its executions, and
   * sometimes all are down at once (one killed while another restarts).
   */
  startKilling(): void {
    this.#killing = true;
    this.#loop = Promise.all(this.#children.map((_, index) => this.#killLoop(index))).then(() => {});
  }

  async #killLoop(index: number): Promise<void> {
    try {
      // A bounded number of kills, each after the engine was up a while: an engine killed sooner than a
      // tool call lasts would re-run that call forever and nothing would end.
      while (this.#killing && this.kills + this.freezes < this.maxKills) {
        await new Promise((r) => setTimeout(r, 300 + this.random() * 3_000));
        if (!this.#killing) break;
        if (this.freezing && this.random() < FREEZE_SHARE) {
          await this.#freeze(index);
          continue;
        }
        await this.#kill(index);
        // Not while another loop restarts it: that loop's restart would be cut short.
        if (!this.#natsRestarting && this.random() < 0.15) {
          this.natsKills++;
          this.#natsRestarting = true;
          try {
            await this.#note("nats-server SIGKILLed and restarted", this.#children.map((_, i) => i));
            await this.#restartNats();
          } finally {
            this.#natsRestarting = false;
          }
        }
        await this.#restart(index);
      }
    } catch (e) {
      // The machine, not the engine (an engine that did not come back in 3 × 60 s at load 24 ended a
      // `--cases 400` run with an unhandled rejection): the kills stop, and the cases still running fail
      // their requests, which check.ts counts as inconclusive (no engine answered in time).
      console.error(
        `the engine ${this.#instanceId(index)} could not be restarted; no more kills of it in this batch: ${
          (e as Error).stack ?? e
        }`,
      );
    }
  }

  /**
   * SIGSTOPs engine `index` and SIGCONTs it 0.5 to 20 s later: it keeps its NATS connection, so the other
   * engines do not see it gone, its commands come back to them after their ack wait, and past its leases' TTL
   * (15 s) another engine takes them; woken, it goes on with what it held, a stale holder to be fenced.
   */
  async #freeze(index: number): Promise<void> {
    const child = this.#children[index];
    if (!child) return;
    this.freezes++;
    const from = Date.now();
    const ms = 500 + this.random() * 19_500;
    this.#downSince[index] = from;
    child.kill("SIGSTOP");
    await this.#note(`engine process ${this.#instanceId(index)} SIGSTOPped for ${Math.round(ms)} ms`, [
      index,
    ]);
    await new Promise((r) => setTimeout(r, ms));
    child.kill("SIGCONT");
    await this.#note(`engine process ${this.#instanceId(index)} SIGCONTed`, [index]);
    this.downtimes.push({ from, to: Date.now() });
    this.#downSince[index] = undefined;
  }

  /**
   * The downtimes ended so far and those still going on (until now): a case may end and be judged while an
   * engine is still restarting or frozen (seeds 1038314 and 2038310 of a two-engine run: both engines down from
   * 06:33:29 to 06:33:46, one of them not yet healthy again when the case was compared, so its overdue timers
   * firing out of due order were read as the engine's difference).
   */
  downtimesSoFar(): Downtime[] {
    const now = Date.now();
    const ongoing = this.#downSince.filter((from) => from !== undefined).map((from) => ({ from, to: now }));
    return [...this.downtimes, ...ongoing];
  }

  /** Starts engine `index` again after a kill; one that does not come up is killed and started again. */
  async #restart(index: number): Promise<void> {
    const from = Date.now();
    for (let tries = 1;; tries++) {
      try {
        await this.start(index);
        if (tries > 1) this.outages.push({ from, to: Date.now() });
        this.downtimes.push({ from: this.#downSince[index] ?? from, to: Date.now() });
        this.#downSince[index] = undefined;
        return;
      } catch (e) {
        if (tries === 3) {
          this.outages.push({ from, to: Infinity });
          throw e;
        }
        console.error(
          `the engine ${
            this.#instanceId(index)
          } was not healthy 60 s after a kill (try ${tries}); it is started again`,
        );
        await this.#kill(index);
      }
    }
  }

  /** SIGKILL and restart on the same port; another process on this machine may take the port meanwhile. */
  async #restartNats(): Promise<void> {
    for (let tries = 1;; tries++) {
      try {
        return await this.nats.restart({ crash: tries === 1, downMs: 200 });
      } catch (e) {
        if (tries === 5) throw new Error("nats-server did not come back on its port", { cause: e });
        await new Promise((r) => setTimeout(r, 500));
      }
    }
  }

  async stopKilling(): Promise<void> {
    this.#killing = false;
    await this.#loop;
  }

  async #kill(index: number): Promise<void> {
    const child = this.#children[index];
    if (!child) return;
    this.kills++;
    this.#downSince[index] ??= Date.now();
    try {
      child.kill("SIGKILL");
    } catch { /* already gone */ }
    await child.status;
    await this.#note(`engine process ${this.#instanceId(index)} SIGKILLed (kill ${this.kills})`, [index]);
    this.#children[index] = undefined;
  }

  async stop(): Promise<void> {
    await this.stopKilling();
    for (const [index, child] of this.#children.entries()) {
      if (!child) continue;
      try {
        child.kill("SIGKILL");
      } catch { /* already gone */ }
      await child.status;
      this.#children[index] = undefined;
    }
  }
}

/**
 * A copy of the signal message `action.id` sent earlier, as one stored past the command stream's duplicate
 * window arrives (a signal task's replay, an API retry with the same key): the same message id in its
 * metadata, another deduplication id, so the stream stores it at once.
 */
async function sendCopy(
  bus: Bus,
  execId: string,
  workflowId: string,
  action: Extract<Checkpoint["actions"][number], { kind: "signal" }>,
): Promise<void> {
  await bus.publish(
    create(WorkflowSignalSchema, {
      metadata: bus.metadata(execId, action.id),
      workflow: { id: workflowId, execId },
      signalId: action.signal,
      payloadJson: new TextEncoder().encode(JSON.stringify(action.payload)),
    }),
    { msgId: `${action.id}:copy` },
  );
}
