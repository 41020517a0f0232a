/**
 * Tasks that run other tasks: parallel, collection and composite. Children run inside the same driver, each
 * recorded on its own, so a replay skips the children that already finished.
 */
import { TaskFailure } from "../../failure.ts";
import type { CollectionTask, CompositeTask, ParallelTask, TaskConfig } from "../task/schema.ts";
import { renderField } from "../task/template_scope.ts";
import type { ExecutionDriver, Outcome, Scope } from "./execution_driver.ts";

export async function runContainer(
  driver: ExecutionDriver,
  task: ParallelTask | CollectionTask | CompositeTask,
  key: string,
  execId: string,
  scope: Scope,
): Promise<unknown> {
  const childScope: Scope = { ...scope, parentExecId: execId };
  switch (task.type) {
    case "composite":
      return await runComposite(driver, task, key, childScope);
    case "parallel":
      return await runParallel(driver, task, key, childScope);
    case "collection":
      return await runCollection(driver, task, key, childScope);
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

async function runParallel(driver: ExecutionDriver, task: ParallelTask, key: string, scope: Scope) {
  const strategy = task.strategy ?? "wait_all";
  const outputs: Record<string, unknown> = {};
  const failures: Record<string, { message: string; code: string }> = {};
  let winner: { id: string; output: unknown } | undefined;
  let firstFailure: TaskFailure | undefined;
  await forEachLimited(task.tasks, task.max_workers ?? task.tasks.length, async (child: TaskConfig) => {
    // fail_fast and race stop starting children once decided; children already running finish on their own.
    if ((strategy === "fail_fast" && firstFailure) || (strategy === "race" && winner)) return;
    const outcome = await driver.runTask(child, `${key}/${child.id}`, scope);
    if (outcome.ok) {
      outputs[child.id] = outcome.output;
      winner ??= { id: child.id, output: outcome.output };
    } else {
      failures[child.id] = { message: outcome.failure.message, code: outcome.failure.code };
      firstFailure ??= childFailure(key, child.id, outcome);
    }
  });
  if (strategy === "race") {
    if (!winner) {
      throw firstFailure ??
        new TaskFailure(`parallel '${key}': no child succeeded`, "parallel_failed", false);
    }
    return { [winner.id]: winner.output };
  }
  if (strategy === "best_effort") {
    return Object.keys(failures).length ? { ...outputs, errors: failures } : outputs;
  }
  if (firstFailure) throw firstFailure;
  return outputs;
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
      const outcome = await driver.runTask(task.task, `${key}[${index}]`, {
        ...scope,
        item: items[index],
        index,
      });
      if (!outcome.ok) throw childFailure(key, `[${index}]`, outcome);
      outputs[slot] = outcome.output;
    });
  }
  return outputs;
}

function childFailure(key: string, child: string, outcome: Extract<Outcome, { ok: false }>): TaskFailure {
  return new TaskFailure(`${key}/${child}: ${outcome.failure.message}`, outcome.failure.code, false, {
    child,
  });
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
