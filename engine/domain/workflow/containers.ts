/**
 * Tasks that run other tasks: parallel, collection and composite. Children run inside the same driver, each
 * recorded on its own, so a replay skips the children that already finished. Each composite, each branch of a
 * parallel and each item of a collection has its own scope of task results (see ResultScope).
 */
import { TaskFailure } from "../../failure.ts";
import type { CollectionTask, CompositeTask, ParallelTask, TaskConfig } from "../task/schema.ts";
import { renderField, ResultScope } from "../task/template_scope.ts";
import { BranchCanceled, type ExecutionDriver, type Outcome, type Scope } from "./execution_driver.ts";

export async function runContainer(
  driver: ExecutionDriver,
  task: ParallelTask | CollectionTask | CompositeTask,
  key: string,
  execId: string,
  scope: Scope,
): Promise<unknown> {
  // The container's own scope: its children's results, readable by its `outputs` and (for a composite or a
  // parallel) by the tasks after it.
  const inner: Scope = { ...scope, parentExecId: execId, results: new ResultScope(scope.results) };
  try {
    switch (task.type) {
      case "composite":
        return await runComposite(driver, task, key, inner);
      case "parallel":
        return await runParallel(driver, task, key, inner);
      case "collection":
        return await runCollection(driver, task, key, inner);
    }
  } finally {
    if (task.type !== "collection") inner.results.publish();
  }
}

async function runComposite(driver: ExecutionDriver, task: CompositeTask, key: string, scope: Scope) {
  let output: unknown = null;
  for (const child of task.tasks) {
    const outcome = await driver.runTask(child, `${key}/${child.id}`, scope);
    if (!outcome.ok) throw childFailure(key, child.id, outcome);
    output = outcome.output;
  }
  return output;
}

/**
 * Runs the children at once (at most `max_workers`). `race` ends at the first success and `fail_fast` at the
 * first failure: the other branches are given up at once (canceled), not waited for. On a replay, the decision
 * recorded first (by stream order) is taken again.
 */
async function runParallel(driver: ExecutionDriver, task: ParallelTask, key: string, scope: Scope) {
  const strategy = task.strategy ?? "wait_all";
  const decisive = strategy === "race" || strategy === "fail_fast";
  const decided = decisive ? replayedDecision(driver, task, key, strategy) : undefined;
  const children = decided ? [decided] : task.tasks;
  const branches = new AbortController();
  const branchAbort = scope.abort ? AbortSignal.any([scope.abort, branches.signal]) : branches.signal;
  const outputs: Record<string, unknown> = {};
  const failures: Record<string, { message: string; code: string }> = {};
  let winner: { id: string; output: unknown } | undefined;
  let firstFailure: TaskFailure | undefined;
  let decide!: () => void;
  const decision = new Promise<void>((resolve) => decide = resolve);
  const all = forEachLimited(children, task.max_workers ?? children.length, async (child: TaskConfig) => {
    if (branchAbort.aborted) return;
    const branch: Scope = { ...scope, results: new ResultScope(scope.results), abort: branchAbort };
    let outcome: Outcome;
    try {
      outcome = await driver.runTask(child, `${key}/${child.id}`, branch);
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
      firstFailure ??= childFailure(key, child.id, outcome);
      if (strategy === "fail_fast") decide();
    }
  });
  await Promise.race([all, decision]);
  if (!branchAbort.aborted) branches.abort(new BranchCanceled(`parallel '${key}' was decided`));
  // The given-up branches end on their own (canceled); an error of theirs changes nothing now.
  all.catch(() => {});
  if (strategy === "race") {
    if (!winner) {
      await all; // Every branch ended: an error of the engine (not of a task) surfaces here.
      throw firstFailure ??
        new TaskFailure(`parallel '${key}': no child succeeded`, "parallel_failed", false);
    }
    return { [winner.id]: winner.output };
  }
  if (strategy === "fail_fast" && firstFailure) throw firstFailure;
  await all;
  if (strategy === "best_effort") {
    return Object.keys(failures).length ? { ...outputs, errors: failures } : outputs;
  }
  if (firstFailure) throw firstFailure;
  return outputs;
}

/**
 * The child whose recorded outcome decided a race (the first success) or a fail_fast (the first failure), if
 * the history has one: a replay takes the same decision without running the others again.
 */
function replayedDecision(
  driver: ExecutionDriver,
  task: ParallelTask,
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

async function runCollection(driver: ExecutionDriver, task: CollectionTask, key: string, scope: Scope) {
  const items = renderField(task.items, driver.context(scope), key, "items");
  if (!Array.isArray(items)) {
    throw new TaskFailure(
      `collection '${key}': items rendered to ${typeof items}, not a list`,
      "items_not_list",
      false,
    );
  }
  const selected: number[] = [];
  items.forEach((item, index) => {
    if (task.filter === undefined) return selected.push(index);
    const keep = renderField(task.filter, driver.context({ ...scope, item, index }), key, "filter");
    if (keep === true || keep === "true") selected.push(index);
  });
  const outputs = new Array<unknown>(selected.length);
  const workers = task.mode === "sequential" ? 1 : (task.max_workers ?? 10);
  const batch = task.batch ?? selected.length;
  for (let start = 0; start < selected.length; start += Math.max(1, batch)) {
    const slice = selected.slice(start, start + Math.max(1, batch)).map((index, i) => ({
      index,
      slot: start + i,
    }));
    await forEachLimited(slice, workers, async ({ index, slot }) => {
      // Each item has its own scope: `.tasks.X` inside it reads this item's X, never another's.
      const outcome = await driver.runTask(task.task, `${key}[${index}]`, {
        ...scope,
        results: new ResultScope(scope.results),
        item: items[index],
        index,
      });
      if (!outcome.ok) throw childFailure(key, `[${index}]`, outcome);
      outputs[slot] = outcome.output;
    });
  }
  return outputs;
}

/** A child's failure as its parent's: it keeps the child's code and whether another attempt may succeed. */
function childFailure(key: string, child: string, outcome: Extract<Outcome, { ok: false }>): TaskFailure {
  return new TaskFailure(
    `${key}/${child}: ${outcome.failure.message}`,
    outcome.failure.code,
    outcome.failure.retryable,
    { child },
    { cause: outcome.failure },
  );
}

/** Runs `fn` over `items` with at most `limit` at once; the first error is thrown after all started work ends. */
export async function forEachLimited<T>(
  items: T[],
  limit: number,
  fn: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  let error: unknown;
  const worker = async () => {
    while (next < items.length && error === undefined) {
      const item = items[next++];
      try {
        await fn(item);
      } catch (e) {
        error ??= e;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(Math.max(1, limit), items.length) }, worker));
  if (error !== undefined) throw error;
}
