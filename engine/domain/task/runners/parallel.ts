/** `parallel`: runs its children at once; its output is a map by child id (see the strategies). */
import { getLogger } from "../../../../pkg/logger/mod.ts";
import { TaskFailure } from "../../../failure.ts";
import type { TaskConfig } from "../schema.ts";
import { ResultScope } from "../template_scope.ts";
import { childFailure, FirstFailure, forEachLimited, inContainer, restoreChildren } from "./children.ts";
import {
  BranchCanceled,
  type DriverPort,
  type Outcome,
  type Scope,
  type TaskOf,
  type TaskRunner,
} from "./types.ts";

const log = getLogger(["engine", "driver"]);

export const parallelRunner: TaskRunner<TaskOf<"parallel">> = {
  run: (run) => inContainer(run, (key, scope) => runParallel(run.driver, run.task, key, scope)),
  replayed: restoreChildren,
};

/**
 * Runs the children at once (at most `max_workers`). `race` ends at the first success and `fail_fast` at the
 * first failure: the other branches are given up at once (canceled), not run to their end; the parallel ends
 * once they have stopped. On a replay, the decision recorded first (by stream order) is taken again.
 */
async function runParallel(driver: DriverPort, task: TaskOf<"parallel">, key: string, scope: Scope) {
  const strategy = task.strategy ?? "wait_all";
  const decisive = strategy === "race" || strategy === "fail_fast";
  const decided = decisive ? replayedDecision(driver, task, key, strategy) : undefined;
  if (decided) await giveUpLosers(driver, task, key, scope, decided);
  const children = decided ? [decided] : task.tasks;
  const branches = new AbortController();
  const branchAbort = scope.abort ? AbortSignal.any([scope.abort, branches.signal]) : branches.signal;
  const outputs: Record<string, unknown> = {};
  const failures: Record<string, { message: string; code: string }> = {};
  let winner: { id: string; output: unknown } | undefined;
  const failed = new FirstFailure(driver);
  let decide!: () => void;
  const decision = new Promise<void>((resolve) => decide = resolve);
  const all = forEachLimited(children, task.max_workers ?? children.length, async (child: TaskConfig) => {
    if (branchAbort.aborted) return;
    const branch: Scope = { ...scope, results: new ResultScope(scope.results), abort: branchAbort };
    const childKey = `${key}/${child.id}`;
    let outcome: Outcome;
    try {
      outcome = await driver.runTask(child, childKey, branch);
    } catch (e) {
      if (e instanceof BranchCanceled && branches.signal.aborted) return; // A loser of a decided parallel.
      throw e;
    } finally {
      branch.results.publish();
    }
    if (outcome.ok) {
      outputs[child.id] = outcome.output;
      winner ??= { id: child.id, output: outcome.output };
      if (strategy === "race") decide();
    } else {
      failures[child.id] = { message: outcome.failure.message, code: outcome.failure.code };
      failed.add(child, childKey, childFailure(key, child.id, outcome));
      if (strategy === "fail_fast") decide();
    }
  });
  await Promise.race([all, decision]);
  if (!branchAbort.aborted) branches.abort(new BranchCanceled(`parallel '${key}' was decided`));
  // The given-up branches stop at the abort (canceled); an error of theirs changes nothing now. They are
  // awaited so that each shows CANCELED in `.tasks` (its branch scope published) before the tasks after this
  // one read it: not awaited, a loser's result came after them, or never (a composite's children).
  await all.catch((e) => {
    if (!(e instanceof BranchCanceled)) {
      log.debug("a given-up branch of {key} ended: {error}", { key, error: String(e) });
    }
  });
  if (strategy === "race") {
    if (!winner) {
      await all; // Every branch ended: an error of the engine (not of a task) surfaces here.
      throw failed.failure ??
        new TaskFailure({
          message: `parallel '${key}': no child succeeded`,
          code: "parallel_failed",
          retryable: false,
        });
    }
    return { [winner.id]: winner.output };
  }
  if (strategy === "fail_fast" && failed.failure) throw failed.failure;
  await all;
  if (strategy === "best_effort") {
    return Object.keys(failures).length ? { ...outputs, errors: failures } : outputs;
  }
  if (failed.failure) throw failed.failure;
  return outputs;
}

/**
 * On a replay of a decided race or fail_fast, the other branches still under way (the engine gave the
 * execution up, or died, between the decision and their give-up) are given up as the first run gives them up:
 * each goes through runTask under an aborted scope, which stops what an open one started (its sub-workflow
 * canceled, a container's open children given up) and records it canceled (replayed_give_up.ts); an ended or
 * never-started one stops at once. Without it, a loser's sub-workflow ran on after its parent's end (leftover
 * of issue 9).
 */
async function giveUpLosers(
  driver: DriverPort,
  task: TaskOf<"parallel">,
  key: string,
  scope: Scope,
  decided: TaskConfig,
): Promise<void> {
  const lost = new AbortController();
  const reason = new BranchCanceled(`parallel '${key}' was decided`);
  lost.abort(reason);
  const abort = scope.abort ? AbortSignal.any([scope.abort, lost.signal]) : lost.signal;
  for (const child of task.tasks) {
    if (child === decided) continue;
    const branch: Scope = { ...scope, results: new ResultScope(scope.results), abort };
    try {
      await driver.runTask(child, `${key}/${child.id}`, branch);
    } catch (e) {
      if (e !== reason) throw e;
    } finally {
      // Each shows CANCELED (or its recorded outcome) after the parallel, as in the first run.
      branch.results.publish();
    }
  }
}

/**
 * The child whose recorded outcome decided a race (the first success) or a fail_fast (the first failure), if
 * the history has one: a replay takes the same decision without running the others again.
 */
function replayedDecision(
  driver: DriverPort,
  task: TaskOf<"parallel">,
  key: string,
  strategy: "race" | "fail_fast",
): TaskConfig | undefined {
  let first: { child: TaskConfig; seq: number } | undefined;
  for (const child of task.tasks) {
    const recorded = driver.recordedAt(child, `${key}/${child.id}`);
    if (!recorded || recorded.outcome.ok !== (strategy === "race")) continue;
    if (!first || recorded.seq < first.seq) first = { child, seq: recorded.seq };
  }
  return first?.child;
}
