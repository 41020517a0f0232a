/** Cases as project files, their expected result from the reference, and which generated cases are usable. */
import { stringify } from "yaml";
import { loadProject, parseDuration } from "../../../engine/domain/project/mod.ts";
import { evaluate } from "../reference/interpreter.ts";
import type { ReferenceResult } from "../reference/types.ts";
import { writeProject } from "../../support/engine.ts";
import type { Feature } from "./features.ts";
import {
  type Case,
  generateCase,
  GIVE_UP_TIMEOUT,
  SHORT_TIMEOUT,
  TOOL_ID,
  TOOL_TIMEOUT_MS,
  toolModel,
  toolModule,
} from "./generator.ts";

/** One project holding every workflow of `cases`, with the test tool logging its calls to `logFile`. */
export function projectFiles(cases: Case[], logFile: string): Record<string, string> {
  const files: Record<string, string> = {};
  const sources: string[] = [];
  for (const c of cases) {
    for (const [id, workflow] of Object.entries(c.workflows)) {
      files[`wf/${id}.yaml`] = stringify(workflow);
      sources.push(`  - source: ./wf/${id}.yaml`);
    }
  }
  const logDir = logFile.slice(0, logFile.lastIndexOf("/"));
  files["compozy.yaml"] = `name: model
workflows:
${sources.join("\n")}
tools:
  - id: ${TOOL_ID}
    execute: ./t.ts
    timeout: ${TOOL_TIMEOUT_MS}ms
    permissions: { write: [${JSON.stringify(logDir)}] }
`;
  files["t.ts"] = toolModule(logFile);
  return files;
}

/** The case as one YAML document per workflow, for a report. */
export function caseYaml(c: Case): string {
  const parts = Object.values(c.workflows).map((w) => stringify(w));
  return `# seed ${c.seed}; input: ${JSON.stringify(c.input)}\n# plan (actions when a wait waits): ${
    JSON.stringify(c.plan)
  }\n${parts.join("---\n")}`;
}

/** Evaluates `c` with the reference interpreter, on the project loaded the way the engine loads it. */
export async function expectedOf(c: Case): Promise<ReferenceResult> {
  const dir = await writeProject(projectFiles([c], "/tmp/compozy-model-unused/calls.jsonl"));
  try {
    const project = await loadProject(dir);
    return await evaluate(project, c.id, c.input, { tools: toolModel, plan: c.plan, horizonMs: 60_000 });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/**
 * Why a case cannot be compared on a real engine, or undefined: it never ends, or a workflow time-out could
 * fire at another point of the flow in real time than in virtual time. With `crashes`, a long task time-out
 * around work that ends in time is unfit too: its timer runs on the real clock while the killed engine
 * restarts (seconds each on a loaded machine), so whether it fires depends on the kills, not the engine (seed
 * 30008: three 2 s tool attempts in an 8 s sub-workflow, 4 to 5 s lost to restarts between them; the same
 * reason as `workflow_timeout` in CRASH_UNFIT). A short time-out that fires in the reference fires on the
 * engine too, crashes or not. For the same reason a crash run leaves out a `race` or `fail_fast` that one branch
 * decided while others still ran.
 */
export function unusable(c: Case, expected: ReferenceResult, crashes = false): string | undefined {
  if (expected.status === "STUCK") return "never ends";
  const raced = crashes && expected.bounds.find((b) => !b.timedOut);
  if (raced) return `${raced.key}'s ${raced.limitMs} ms time-out races the engine's restarts`;
  // A race (or fail_fast) decided while another branch still ran is real-clock timing under crashes: a kill
  // before the deciding branch's end was recorded re-runs it after a restart (4 to 35 s on a loaded machine),
  // and meanwhile the other branches' timers and tools go on, so any of them may end first or start calls the
  // reference never makes (seed 30221). No margin makes it safe, since a restart's length has no bound; the
  // plain runs keep every race, and crash runs keep those decided after the other branches ended.
  const decided = crashes && expected.decisions.find((d) => d.stopped > 0);
  if (decided) {
    return `${decided.key} was decided by ${decided.branch} while ${decided.stopped} other branches ran`;
  }
  const flaky = crashes && flakyFailingForGood(expected);
  if (flaky) return `flaky ${flaky} fails on its last allowed attempt, which a crash re-run goes past`;
  // The engine is slower than virtual time (signal round trips, a loaded machine): an attempt that ends in
  // time in the reference must end well before its time-out, or the engine could time it out. One that timed
  // out in the reference times out on the engine too, as the engine only adds delay.
  const close = expected.bounds.find((b) => !b.timedOut && b.limitMs - b.tookMs < TIMEOUT_MARGIN_MS);
  // Likewise, a parallel fails with its first branch's failure: another of another code, close behind in
  // virtual time, may come first on the engine (seed 180336 at load 8: a tool failing "at once" took 864 ms,
  // and a wait's 300 ms time-out beside it became the parallel's error).
  const contested = expected.parallelFailures.find(({ failures: [first, ...others] }) =>
    others.some((f) => f.code !== first.code && f.atMs - first.atMs < TIMEOUT_MARGIN_MS)
  );
  if (contested) {
    const [first, ...others] = contested.failures;
    const second = others.find((f) => f.code !== first.code)!;
    return `${contested.key} fails with ${first.branch}'s ${first.code}, ${
      second.atMs - first.atMs
    } ms before ` +
      `${second.branch}'s ${second.code}`;
  }
  if (close) return `${close.key} ends ${close.limitMs - close.tookMs} ms before its time-out`;
  // A long time-out that fires in the reference may fire just as long work ends: only the short ones, put
  // before a 2 s sleep by the generator, and the 2 s ones around a child that sleeps 30 s first, are sure
  // to fire first on the engine too.
  const late = expected.bounds.find((b) =>
    b.timedOut && b.limitMs > parseDuration(SHORT_TIMEOUT) && b.limitMs !== parseDuration(GIVE_UP_TIMEOUT)
  );
  if (late) return `${late.key} times out after ${late.limitMs} ms of work`;
  if (expected.elapsedMs > 12_000) return `takes ${expected.elapsedMs} ms`;
  const timed = (c.workflows[c.id].config as { timeout?: string } | undefined)?.timeout !== undefined;
  if (timed && expected.status !== "TIMED_OUT" && expected.elapsedMs > 1_500) return "ends near its time-out";
  if (
    timed && expected.status === "TIMED_OUT" && Math.max(0, ...Object.values(expected.waitStarts)) > 1_500
  ) {
    return "reaches its last wait near its time-out";
  }
  return undefined;
}

/**
 * The input key of a flaky tool whose last allowed attempt fails in the reference, if any. A crash re-run of
 * a call is its task's next attempt, even past `retry.max_attempts` (docs/engine.md: at least once, and the
 * re-run reports the next attempt); the flaky tool succeeds from attempt n + 1 on, so when the kill hits its
 * last allowed attempt the task succeeds where the reference failed it (seed 30329: attempt 1 of a task
 * without retry failed, the engine was killed before recording it, the re-run as attempt 2 succeeded). A
 * flaky tool that succeeds within its attempts in the reference ends the same whatever the kills. Counted
 * per input: each failing attempt a must be followed by a call at a + 1 (a retried container calls it again
 * from attempt 1).
 */
function flakyFailingForGood(expected: ReferenceResult): string | undefined {
  const byInput = new Map<string, { n: number; k: string; attempts: number[] }>();
  for (const call of expected.calls) {
    const s = call.input as { do?: string; n?: number; k?: string };
    if (s?.do !== "flaky") continue;
    const key = JSON.stringify(call.input);
    const entry = byInput.get(key) ?? { n: s.n ?? 1, k: s.k ?? key, attempts: [] };
    entry.attempts.push(call.attempt);
    byInput.set(key, entry);
  }
  for (const { n, k, attempts } of byInput.values()) {
    const count = (a: number) => attempts.filter((x) => x === a).length;
    for (let a = 1; a <= n; a++) if (count(a) > count(a + 1)) return k;
  }
  return undefined;
}

/** How much earlier than its time-out a bounded attempt must end in the reference. */
const TIMEOUT_MARGIN_MS = 3_000;

/** The case of `seed`, or of a derived seed when that one is unusable; with its expected result. */
export async function usableCase(
  seed: number,
  features: Set<Feature>,
  crashes = false,
): Promise<{ case: Case; expected: ReferenceResult }> {
  for (let tries = 0; tries < 50; tries++) {
    const c = generateCase(seed + tries * 1_000_003, features);
    c.seed = seed + tries * 1_000_003;
    const expected = await expectedOf(c);
    if (!unusable(c, expected, crashes)) return { case: c, expected };
  }
  throw new Error(`no usable case near seed ${seed}`);
}
