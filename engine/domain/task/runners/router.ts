/** `router`: renders its condition and follows `routes[value]`, else `default`. */
import type { TemplateContext } from "../../../../pkg/tplengine/mod.ts";
import { TaskFailure } from "../../../failure.ts";
import type { TaskConfig } from "../schema.ts";
import { renderField } from "../template_scope.ts";
import type { TaskOf, TaskRunner } from "./types.ts";

export const routerRunner: TaskRunner<TaskOf<"router">> = {
  run({ task, key, context }) {
    const { name, route } = routeOf(task, context, key);
    if (route === undefined) {
      throw new TaskFailure({
        message: `router '${key}': no route for '${name}' and no default`,
        code: "no_route",
        retryable: false,
        details: { value: name },
      });
    }
    return Promise.resolve({ ok: true, output: { route: name }, route, routeName: name });
  },
  // The recorded route, not a new rendering of the condition: `now()` or a definition changed since the run
  // would route elsewhere (outside review E2: both routes ran). The recorded output may have been reshaped by
  // `outputs`, so it is not read back; a success recorded before routes were kept renders the condition again.
  replayed: ({ driver, task, key, scope }, recorded) => {
    if (recorded.skipped) return recorded;
    if (recorded.routeName !== undefined) {
      return { ...recorded, route: routeNamed(task, recorded.routeName) };
    }
    return { ...recorded, route: routeOf(task, driver.context(scope), key).route };
  },
};

/**
 * The route a router takes: its rendered condition as a string, and the task that names. Pure: a replay
 * routes the same way again from what was recorded before the router.
 */
export function routeOf(
  task: TaskOf<"router">,
  context: TemplateContext,
  key: string,
): { name: string; route: string | TaskConfig | undefined } {
  const value = renderField(task.condition, context, key, "condition");
  const name = typeof value === "string" ? value : JSON.stringify(value);
  return { name, route: routeNamed(task, name) };
}

/**
 * `routes[name]`, else `default`. Only the routes' own keys count: a condition that rendered `toString` or
 * `constructor` (from a workflow's input, say) took the object's inherited function for a route and failed
 * the execution `internal_error` with a task of no id (outside review brk-eng3 E4).
 */
function routeNamed(task: TaskOf<"router">, name: string): string | TaskConfig | undefined {
  return Object.hasOwn(task.routes, name) ? task.routes[name] : task.default;
}
