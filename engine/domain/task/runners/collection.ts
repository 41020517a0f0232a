/** `collection`: runs its task for each item (`.item`, `.index`), each in a scope of its own. */
import type { TemplateContext } from "../../../../pkg/tplengine/mod.ts";
import { TaskFailure } from "../../../failure.ts";
import { renderCondition, renderField, ResultScope } from "../template_scope.ts";
import { childFailure, FirstFailure, forEachLimited, inContainer } from "./children.ts";
import type { DriverPort, Scope, TaskOf, TaskRunner } from "./types.ts";

/**
 * The rendered `items` and the indexes `filter` kept (absent: no filter, all of them), recorded once with the
 * attempt's start (the item list once, then one number per kept item; nothing per item is recorded twice).
 */
interface Selection {
  items: unknown[];
  kept?: number[];
}

export const collectionRunner: TaskRunner<TaskOf<"collection">> = {
  input: selectItems,
  // A replay keeps the items the first run kept (outside review E2): a filter reading `now()`, or a definition
  // changed since, would drop items that ran (recorded CANCELED) and their outputs.
  replaysInput: true,
  durableStart: true,
  run: (run) => {
    // The driver renders the selection again when the start was recorded without one (by an older engine, or
    // too large for one bus message); a recorded input that is no selection (the task at this key was of
    // another type when it started: the definition changed) is rendered again here.
    const selection = isSelection(run.input) ? run.input : selectItems(run.task, run.context, run.key);
    return inContainer(run, (key, scope) => runCollection(run.driver, run.task, key, scope, selection));
  },
};

function selectItems(task: TaskOf<"collection">, context: TemplateContext, key: string): Selection {
  const items = renderField(task.items, context, key, "items");
  if (!Array.isArray(items)) {
    throw new TaskFailure({
      message: `task '${key}', field 'items': rendered to ${kindOf(items)}, not a list`,
      code: "items_not_list",
      retryable: false,
      details: { task_id: key, field: "items" },
    });
  }
  if (task.filter === undefined) return { items };
  const kept: number[] = [];
  items.forEach((item, index) => {
    if (keepItem(task.filter, key, { ...context, item, index }, index)) kept.push(index);
  });
  return { items, kept };
}

function isSelection(value: unknown): value is Selection {
  if (typeof value !== "object" || value === null) return false;
  const { items, kept } = value as Partial<Selection>;
  return Array.isArray(items) && (kept === undefined || Array.isArray(kept));
}

async function runCollection(
  driver: DriverPort,
  task: TaskOf<"collection">,
  key: string,
  scope: Scope,
  { items, kept }: Selection,
) {
  const selected = kept ?? items.map((_, index) => index);
  const outputs = new Array<unknown>(selected.length);
  const workers = task.mode === "sequential" ? 1 : (task.max_workers ?? 10);
  const batch = task.batch ?? selected.length;
  const failed = new FirstFailure(driver);
  for (let start = 0; start < selected.length; start += Math.max(1, batch)) {
    const slice = selected.slice(start, start + Math.max(1, batch)).map((index, i) => ({
      index,
      slot: start + i,
    }));
    await forEachLimited(slice, workers, async ({ index, slot }) => {
      const itemKey = `${key}[${index}]`;
      // Each item has its own scope: `.tasks.X` inside it reads this item's X, never another's.
      const outcome = await driver.runTask(task.task, itemKey, {
        ...scope,
        results: new ResultScope(scope.results),
        item: items[index],
        index,
      });
      if (!outcome.ok) throw failed.add(task.task, itemKey, childFailure(key, `[${index}]`, outcome));
      outputs[slot] = outcome.output;
    }).catch((e) => {
      throw failed.instead(e);
    });
  }
  return outputs;
}

/**
 * `filter` is strict like `if` (docs/yaml-reference.md): true or "true" keeps the item, false or "false" drops
 * it, and anything else ("yes", 1, an object) fails the collection naming the item, where it used to drop every
 * such item silently.
 */
function keepItem(filter: unknown, key: string, context: TemplateContext, index: number): boolean {
  try {
    return renderCondition(filter, context, key, "filter");
  } catch (e) {
    if (!(e instanceof TaskFailure)) throw e;
    throw new TaskFailure({
      message: `${e.message} (item ${index})`,
      code: e.code,
      retryable: false,
      details: { ...e.details, index },
      cause: e,
    });
  }
}

/** What a non-list `items` rendered to: `null` is not "object" (outside review). */
function kindOf(value: unknown): string {
  if (value === null || value === undefined) return "null";
  return typeof value === "object" ? "an object" : `a ${typeof value}`;
}
