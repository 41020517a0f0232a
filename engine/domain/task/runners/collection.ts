/** `collection`: runs its task for each item (`.item`, `.index`), each in a scope of its own. */
import { TaskFailure } from "../../../failure.ts";
import { renderField, ResultScope } from "../template_scope.ts";
import { childFailure, forEachLimited, inContainer } from "./children.ts";
import type { DriverPort, Scope, TaskOf, TaskRunner } from "./types.ts";

export const collectionRunner: TaskRunner<TaskOf<"collection">> = {
  run: (run) => inContainer(run, (key, scope) => runCollection(run.driver, run.task, key, scope)),
};

async function runCollection(driver: DriverPort, task: TaskOf<"collection">, key: string, scope: Scope) {
  const items = renderField(task.items, driver.context(scope), key, "items");
  if (!Array.isArray(items)) {
    throw new TaskFailure({
      message: `collection '${key}': items rendered to ${typeof items}, not a list`,
      code: "items_not_list",
      retryable: false,
    });
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
