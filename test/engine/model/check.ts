/** Runs a batch of cases on one stack, a few at a time, and reports each one's differences. */
import type { ReferenceResult } from "../reference/types.ts";
import { differences } from "./compare.ts";
import { type Downtime, type Observed, startStack } from "./engine_run.ts";
import type { Case } from "./generator.ts";

export interface Checked {
  case: Case;
  expected: ReferenceResult;
  diffs: string[];
  ms: number;
  /** The root execution's events, when the case differs. */
  history?: string[];
  /** Why the run says nothing about the engine (its diffs are then not a failure), if it does not. */
  inconclusive?: string;
  /** How long past the harness's first limit the execution ended, when it was that slow (engine_run.ts endOf). */
  lateMs?: number;
}

/**
 * A tool call that got no sandbox before its time limit: the machine was too loaded to start a process in
 * time, so the task timed out before the engine's behaviour was put to the test. Found in the final state, or
 * in the history when the call was retried (seeds 30015 and 30016: every retry starved too, and the case was
 * still RUNNING at the harness's limit).
 */
function starvedOfSandboxes(observed: Observed, history: string[]): string | undefined {
  const errors = [observed.state.error, ...observed.state.tasks.map((t) => t.error)];
  const starved = errors.find((e) => e?.message.includes("No sandbox for"))?.message ??
    history.find((line) => line.includes(" tool.failed ") && line.includes("No sandbox for"));
  if (starved) return `the runtime started no sandbox in time (${starved})`;
  // The test tool logs each call as it starts: an attempt that timed out without a logged call never ran
  // its module (a cold sandbox still loading at the limit, seed 3 of the plain set at load 28: "Tool module
  // … timed out after 10000 ms" for a tool that returns at once; seed 18: a `hang` tool's retry).
  const unstarted = observed.timedOut.find((t) =>
    !observed.calls.some((c) => c.taskExec === t.taskExec && c.attempt === t.attempt)
  );
  if (unstarted) {
    return `${unstarted.task} (attempt ${unstarted.attempt}) timed out before its tool started (no sandbox ran it in time)`;
  }
  // A call that only writes its log line and returns, timed out after 2 s: the sandbox was starved of CPU
  // (seed 80026 at load 35: `many8[10]/tool9` logged its start and timed out 2.6 s later).
  const slow = observed.timedOut.find((t) =>
    observed.calls.some((c) =>
      c.taskExec === t.taskExec && c.attempt === t.attempt && (c.input as { do?: string })?.do !== "hang"
    )
  );
  return slow
    ? `${slow.task} (attempt ${slow.attempt}) timed out in a call that returns at once (a starved sandbox)`
    : undefined;
}

/**
 * A race or fail_fast parallel's decided branch (a tool that returns at once) ended after a slow branch's
 * 1.5 s nap (generator.ts #slowBranch): the reference decides such a parallel before any nap ends, and the
 * engine, given the nap's end first, runs the slow branch on (model_test seed 21 at load ~20: `tool3` ended
 * after `slow5/nap6`, and `slow5/tool4` ran). The machine, not the engine.
 */
export function decidedAfterNap(observed: Observed): string | undefined {
  const tasks = observed.state.tasks;
  const endOf = (t: { ended_at?: string | null }) => t.ended_at ? Date.parse(t.ended_at) : undefined;
  for (const nap of tasks) {
    const path = nap.task_id.split("/");
    if (path.length < 3 || !/^nap\d+$/.test(path.at(-1)!) || !/^slow\d+$/.test(path.at(-2)!)) continue;
    const napEnd = endOf(nap);
    if (napEnd === undefined) continue;
    const parent = path.slice(0, -2).join("/");
    const decided = tasks.find((t) => {
      const end = endOf(t);
      return /^tool\d+$/.test(t.task_id.slice(parent.length + 1)) && t.task_id.startsWith(`${parent}/`) &&
        end !== undefined && end > napEnd;
    });
    if (decided) {
      return `${decided.task_id} (a tool that returns at once) ended ${endOf(decided)! - napEnd} ms after ` +
        `${nap.task_id}'s 1.5 s nap (a starved machine)`;
    }
  }
  return undefined;
}

/**
 * The harness sent a checkpoint's actions (signal, pause, resume, cancel) long after its waits started: the
 * reference takes them at that very instant, and a timer that came due meanwhile (a child's 3 s sleep) ran on
 * the engine first (seed 90023 at load 24: the state showed the wait WAITING 3.7 s after it started, the
 * child's sleep ended and its tool ran before the root's cancel reached it). The machine, not the engine.
 */
export function lateControl(observed: Observed): string | undefined {
  const lag = Math.max(0, ...observed.controlLagMs);
  return lag > LATE_CONTROL_MS
    ? `the harness sent a checkpoint's actions ${(lag / 1000).toFixed(1)} s after its waits started`
    : undefined;
}

/**
 * A checkpoint's control never reached NATS: every try timed out for 30 s, so nothing was published (the
 * client reads the state first and a failed publish throws otherwise). The reference took it; the engine
 * could not (seed 161991 of the 2,000-case run on b46039f: a signal during a nats-server restart, and its
 * wait, with a time-out, timed out instead). The machine, not the engine.
 */
export function unsentControl(observed: Observed): string | undefined {
  return observed.unsent.length
    ? `the harness could not send a checkpoint's control (${observed.unsent.join("; ")})`
    : undefined;
}

/** Below the shortest timer the generator puts beside a checkpoint's wait that it expects not to fire (3 s). */
const LATE_CONTROL_MS = 2_000;

/**
 * Two timers of different executions (a parent's sleep, a child's) fired out of due order because the earlier
 * one came due around an engine's kill or while no engine ran: a restarted engine gets the timers a killed one
 * held back only after their ack wait, in nats-server's redelivery order, and runs the activations they start
 * side by side, so a later-due timer of another execution may fire first and the reference's order on its one
 * clock cannot be kept (seeds 1121047, 121093, 140061, 140925: the child's sleep ended and its tool ran before
 * the parent reached the wait where the harness cancels it). Within one execution the engine keeps due order
 * (docs/engine.md, `timeout`), so only pairs across executions count. FINDINGS.md, "Overdue timers across
 * executions".
 */
export function timersReorderedByOutage(
  history: string[],
  downtimes: ReadonlyArray<Downtime>,
): string | undefined {
  const timers = firedTimers(history);
  for (const a of timers) {
    for (const b of timers) {
      if (a.who === b.who || a.due >= b.due || b.firedSeq > a.firedSeq) continue;
      // Due while no engine ran, or just before the kill (a timer's message reaches the engine a few ms after
      // its due time: 140925's was due 0.1 s before the kill and had not fired).
      const outage = downtimes.find((d) => d.from - KILL_MARGIN_MS <= a.due && a.due <= d.to);
      if (!outage) continue;
      const lasted = ((outage.to - outage.from) / 1000).toFixed(1);
      return `${a.name} came due around an engine's ${lasted} s outage, and ${b.name}, due ${
        b.due - a.due
      } ms later in another execution, fired first (overdue timers come back in no due order)`;
    }
  }
  return undefined;
}

interface FiredTimer {
  /** The execution (`[abcdef]` for a sub-workflow, "" for the root) and the task. */
  who: string;
  name: string;
  due: number;
  firedSeq: number;
}

/** How long before a kill a timer may be due and still not have fired. */
const KILL_MARGIN_MS = 1_000;

const HISTORY_LINE = /^(\d+) (\d\d:\d\d:\d\d\.\d{3})Z (\[\w+\] )?(\S+) (\S*) (.*)$/;
const DAY_MS = 86_400_000;

/**
 * The timers in a case's history lines (engine_run.ts `history`) that fired: a `task.waiting_started` with a
 * deadline, ended by its task's next event at or after that deadline (not by a signal before it).
 */
function firedTimers(history: string[]): FiredTimer[] {
  const lines = history.map((l) => HISTORY_LINE.exec(l)).filter((m) => m !== null);
  const fired: FiredTimer[] = [];
  lines.forEach(([, , , who = "", type, task, rest], i) => {
    if (type !== "task.waiting_started") return;
    const deadline = /"deadlineUnixMs":"(\d+)"/.exec(rest)?.[1];
    if (!deadline) return;
    const due = Number(deadline);
    const end = lines.slice(i + 1).find((m) => (m[3] ?? "") === who && m[5] === task);
    if (!end || timeOfDayNear(end[2], due) < due) return;
    // Its execution goes on from the task's end: a wake-up recorded just before every engine was killed goes
    // on only at the replay after the outage (seed 1038314: the root's nap woke at 06:34:39.275, both engines
    // died, and its task.success came at 53.165, after a child's overdue sleep had run on at 52.324).
    const goesOn = lines.slice(i + 1).find((m) =>
      (m[3] ?? "") === who && m[5] === task && (m[4] === "task.success" || m[4] === "task.failed")
    ) ?? end;
    fired.push({ who, name: `${who}${task}`, due, firedSeq: Number(goesOn[1]) });
  });
  return fired;
}

/** An event's time of day (`HH:MM:SS.mmm`) as the instant closest to `near`. */
function timeOfDayNear(time: string, near: number): number {
  const [h, m, sec] = time.split(":").map(Number);
  const at = Math.floor(near / DAY_MS) * DAY_MS + Math.round(((h * 60 + m) * 60 + sec) * 1000);
  return at - near > DAY_MS / 2 ? at - DAY_MS : near - at > DAY_MS / 2 ? at + DAY_MS : at;
}

/**
 * A run that failed because no engine answered the harness's own requests within their retries (a trigger
 * with "no responders" for 30 s): on a machine at load 40 a SIGKILLed engine took longer than that to start
 * again (seeds 30079, 30086). An engine that never comes back fails the stack's health wait instead.
 */
function unreachable(e: unknown): string | undefined {
  const name = (e as Error | undefined)?.name;
  if (name !== "RequestError" && name !== "TimeoutError") return undefined;
  return `no engine answered the harness in time (${(e as Error).message})`;
}

/**
 * The engine was down for over a minute while the case ran (a restart that was not healthy in 60 s, killed
 * and started again): the harness's 120 s for the case were mostly spent without an engine (seed 2031158: a
 * `hang` tool re-run after each of four kills, then 100 s without an event while the restart was retried).
 */
function outageDuring(
  outages: ReadonlyArray<{ from: number; to: number }>,
  since: number,
): string | undefined {
  const outage = outages.find((o) => o.to >= since);
  if (!outage) return undefined;
  const lasted = outage.to === Infinity ? "for good" : `${Math.round((outage.to - outage.from) / 1000)} s`;
  return `the engine was down ${lasted} while the case ran (a restart not healthy in 60 s)`;
}

export interface BatchOptions {
  crashes?: boolean;
  /** Cases in flight at once. */
  concurrency?: number;
  /** Engine processes sharing the nats-server (engine_run.ts StackOptions.engines). */
  engines?: number;
  /** Some kills are freezes (engine_run.ts StackOptions.freezes). */
  freezes?: boolean;
  random?: () => number;
}

export async function checkBatch(
  batch: Array<{ case: Case; expected: ReferenceResult }>,
  options: BatchOptions = {},
): Promise<{ results: Checked[]; kills: number; natsKills: number; freezes: number }> {
  let stack;
  try {
    stack = await startStack(batch.map((b) => b.case), options);
  } catch (e) {
    // The machine, not the engine: a stack that cannot start (a NATS request timing out at load 15) says
    // nothing about the cases, and a long run goes on with its next batch.
    const why = `${(e as Error).message}: ${((e as Error).cause as Error | undefined)?.message ?? ""}`;
    return {
      results: batch.map(({ case: c, expected }) => ({
        case: c,
        expected,
        diffs: [why],
        ms: 0,
        inconclusive: why,
      })),
      kills: 0,
      natsKills: 0,
      freezes: 0,
    };
  }
  const results: Checked[] = [];
  try {
    let next = 0;
    const worker = async () => {
      while (next < batch.length) {
        const { case: c, expected } = batch[next++];
        const started = Date.now();
        let diffs: string[];
        let history: string[] | undefined;
        let inconclusive: string | undefined;
        let lateMs: number | undefined;
        try {
          const observed = await stack.run(c, expected);
          lateMs = observed.lateMs;
          diffs = differences(expected, observed, !!options.crashes);
          if (diffs.length) {
            history = await observed.history();
            inconclusive = starvedOfSandboxes(observed, history) ?? outageDuring(stack.outages, started) ??
              lateControl(observed) ?? decidedAfterNap(observed) ?? unsentControl(observed) ??
              timersReorderedByOutage(history, stack.downtimes);
          }
        } catch (e) {
          diffs = [`run failed: ${(e as Error).stack ?? e}`];
          inconclusive = unreachable(e);
        }
        results.push({ case: c, expected, diffs, ms: Date.now() - started, history, inconclusive, lateMs });
      }
    };
    await Promise.all(Array.from({ length: options.concurrency ?? 3 }, worker));
  } finally {
    await stack.close();
  }
  results.sort((a, b) => a.case.seed - b.case.seed);
  return { results, kills: stack.kills, natsKills: stack.natsKills, freezes: stack.freezes };
}
