/** Compares what the engine did with what the reference says it should have done. */
import { isDeepStrictEqual } from "node:util";
import type { ReferenceResult } from "../reference/types.ts";
import type { Observed } from "./engine_run.ts";

const ENDED = new Set(["SUCCESS", "FAILED", "SKIPPED"]);

/**
 * Differences between the reference and the engine: status, output, error code, per-task outcomes and the
 * multiset of tool calls. With crashes a call may run again (a task that was running when its engine died),
 * so there each expected call must appear at least once and no other call may.
 */
export function differences(expected: ReferenceResult, observed: Observed, crashes: boolean): string[] {
  const diffs = [...observed.problems];
  const state = observed.state;
  if (state.status !== expected.status) {
    diffs.push(`status: expected ${expected.status}, got ${state.status}`);
  }
  const out = normalise(state.output);
  if (!isDeepStrictEqual(out, normalise(expected.output))) {
    diffs.push(`output: expected ${JSON.stringify(expected.output)}, got ${JSON.stringify(out)}`);
  }
  if (expected.error && state.error?.code !== expected.error.code) {
    diffs.push(
      `error code: expected ${expected.error.code}, got ${state.error?.code} (${state.error?.message})`,
    );
  }
  const tasks: Record<string, { status: string; output: unknown; code?: string }> = {};
  const statusOf = new Map(state.tasks.map((t) => [t.task_id, t.status]));
  for (const t of state.tasks) {
    if (!ENDED.has(t.status)) continue;
    tasks[t.task_id] = { status: t.status, output: normalise(t.output), code: t.error?.code };
  }
  const keys = new Set([...Object.keys(tasks), ...Object.keys(expected.tasks)]);
  for (const key of [...keys].sort()) {
    const want = expected.tasks[key];
    const got = tasks[key];
    if (!want) {
      diffs.push(`task ${key}: not expected to end, ended ${got.status} ${JSON.stringify(got.output)}`);
    } else if (!got) {
      diffs.push(`task ${key}: expected ${want.status}, got ${statusOf.get(key) ?? "no such task"}`);
    } else if (want.status !== got.status) {
      diffs.push(
        `task ${key}: expected ${want.status}${want.code ? ` (${want.code})` : ""}, got ${got.status}${
          got.code ? ` (${got.code})` : ""
        }`,
      );
    } else if (!isDeepStrictEqual(normalise(want.output), got.output)) {
      diffs.push(
        `task ${key}: output expected ${JSON.stringify(want.output)}, got ${JSON.stringify(got.output)}`,
      );
    } else if (want.status === "FAILED" && want.code !== got.code) {
      diffs.push(`task ${key}: error code expected ${want.code}, got ${got.code}`);
    }
  }
  // A call the reference starts in a task that it then cancels may not have started on the engine, where the
  // cancel can come first on the real clock (seed 80010: a 1 s workflow time-out before the sandbox ran the
  // call, "canceled while it waited for a sandbox"); so it counts at most once, and its absence is no error.
  const optional = new Set(
    expected.calls.filter((c) => c.canceled).map((c) => JSON.stringify(sortKeys(c.input))),
  );
  const wantCalls = counts(expected.calls.map((c) => c.input));
  const gotCalls = counts(observed.calls.map((c) => c.input));
  for (const [input, n] of wantCalls) {
    const m = gotCalls.get(input) ?? 0;
    if (optional.has(input) ? m > n : crashes ? m === 0 : m !== n) {
      const attempts = observed.calls.filter((c) => JSON.stringify(sortKeys(c.input)) === input).map((c) =>
        c.attempt
      );
      diffs.push(`tool calls with ${input}: expected ${n}, got ${m} (attempts ${attempts.join(", ")})`);
    }
  }
  for (const [input, m] of gotCalls) {
    if (!wantCalls.has(input)) diffs.push(`tool calls with ${input}: expected none, got ${m}`);
  }
  diffs.push(...childDifferences(expected, observed));
  for (const call of observed.late) {
    diffs.push(`tool call for ${call.task} (attempt ${call.attempt}) started after its outcome was recorded`);
  }
  return diffs;
}

/**
 * The sub-workflows each task started and how each ended (docs/engine.md: CANCELED when its task was given
 * up or its parent ended other than SUCCESS while it ran), as a multiset per task key: a retried task starts
 * one per attempt.
 */
function childDifferences(expected: ReferenceResult, observed: Observed): string[] {
  const group = (children: Array<{ key: string; status: string }>) => {
    const map = new Map<string, string[]>();
    for (const c of children) map.set(c.key, [...(map.get(c.key) ?? []), c.status]);
    for (const list of map.values()) list.sort();
    return map;
  };
  const want = group(expected.children);
  const got = group(observed.children);
  const diffs: string[] = [];
  for (const key of [...new Set([...want.keys(), ...got.keys()])].sort()) {
    const a = want.get(key) ?? [];
    const b = got.get(key) ?? [];
    // A child the reference cancels may never have started on the engine: its parent ended or gave its
    // task up (on the real clock) before the start (seed 80057: a 2 s time-out fired 2.2 s after the start,
    // as the first task was dispatched). Nothing of it ran, so only its absence is allowed.
    const unmatched = [...a];
    const extra = b.filter((status) => {
      const i = unmatched.indexOf(status);
      if (i < 0) return true;
      unmatched.splice(i, 1);
      return false;
    });
    if (extra.length || unmatched.some((status) => status !== "CANCELED")) {
      diffs.push(`sub-workflows of ${key}: expected [${a.join(", ")}], got [${b.join(", ")}]`);
    }
  }
  return diffs;
}

function counts(values: unknown[]): Map<string, number> {
  const map = new Map<string, number>();
  for (const v of values) {
    const key = JSON.stringify(sortKeys(v));
    map.set(key, (map.get(key) ?? 0) + 1);
  }
  return map;
}

/** Error messages are the engine's wording, not part of the contract: only codes are compared. */
function normalise(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(normalise);
  if (value && typeof value === "object") {
    const entries = Object.entries(value as Record<string, unknown>);
    const isError = entries.some(([k]) => k === "code") && entries.some(([k]) => k === "message");
    return Object.fromEntries(
      entries.filter(([k]) => !(isError && k === "message")).sort(([a], [b]) => a < b ? -1 : 1)
        .map(([k, v]) => [k, normalise(v)]),
    );
  }
  return value ?? null;
}

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value && typeof value === "object") {
    return Object.fromEntries(
      Object.entries(value as Record<string, unknown>).sort(([a], [b]) => a < b ? -1 : 1).map((
        [k, v],
      ) => [k, sortKeys(v)]),
    );
  }
  return value;
}
