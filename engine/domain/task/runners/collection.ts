/** `collection`: runs its task for each item (`.item`, `.index`), each in a scope of its own. */
import { TaskFailure } from "../../../failure.ts";
import { renderCondition, renderField, ResultScope } from "../template_scope.ts";
import { childFailure, forEachLimited, inContainer } from "./children.ts";
import type { DriverPort, Scope, TaskOf, TaskRunner } from "./types.ts";

export const collectionRunner: TaskRunner<TaskOf<"collection">> = {
  run: (run) => inContainer(run, (key, scope) => runCollection(run.driver, run.task, key, scope)),
};

async function runCollection(driver: DriverPort, task: TaskOf<"collection">, key: string, scope: Scope) {
  const items = renderField(task.items, driver.context(scope), key, "items");
  if (!Array.isArray(items)) {
    throw new TaskFailure({
      message: `task '${key}', field 'items': rendered to ${kindOf(items)}, not a list`,
      code: "items_not_list",
      retryable: false,
      details: { task_id: key, field: "items" },
    });
  }
  const selected: number[] = [];
  items.forEach((item, index) => {
    if (task.filter === undefined || keepItem(driver, task.filter, key, { ...scope, item, index })) {
      selected.push(index);
    }
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

/**
 * `filter` is strict like `if` (docs/yaml-reference.md): true or "true" keeps the item, false or "false" drops
 * it, and anything else ("yes", 1, an object) fails the collection naming the item, where it used to drop every
 * such item silently.
 */
function keepItem(
  driver: DriverPort,
  filter: unknown,
  key: string,
  scope: Scope & { index: number },
): boolean {
  try {
    return renderCondition(filter, driver.context(scope), key, "filter");
  } catch (e) {
    if (!(e instanceof TaskFailure)) throw e;
    throw new TaskFailure({
      message: `${e.message} (item ${scope.index})`,
      code: e.code,
      retryable: false,
      details: { ...e.details, index: scope.index },
      cause: e,
    });
  }
}

/** What a non-list `items` rendered to: `null` is not "object" (outside review). */
function kindOf(value: unknown): string {
  if (value === null || value === undefined) return "null";
  return typeof value === "object" ? "an object" : `a ${typeof value}`;
}
