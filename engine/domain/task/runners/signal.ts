/** `signal`: sends a signal to one execution (`target`) or to every execution waiting for it. */
import { TaskFailure } from "../../../failure.ts";
import { renderField } from "../template_scope.ts";
import type { TaskOf, TaskRunner } from "./types.ts";

export const signalRunner: TaskRunner<TaskOf<"signal">> = {
  async run({ driver, task, key, context }) {
    const payload = renderField(task.signal.payload ?? null, context, key, "signal.payload");
    const target = task.target === undefined
      ? undefined
      : executionId(renderField(task.target, context, key, "target"), key);
    const delivered = await driver.track(
      driver.services.signals.send(driver, task.signal.id, payload, target),
    );
    return { ok: true, output: { signal: task.signal.id, delivered } };
  },
};

/**
 * A rendered `target` that is an execution id: one subject token (ARCHITECTURE.md: no empty token, no `.`,
 * `*`, `>` or white space). Anything else fails the task naming it (outside review B4: `*` failed with an
 * `internal_error` "invalid key", and a target with a dot "succeeded" with `delivered: 0`).
 */
function executionId(rendered: unknown, key: string): string {
  const value = typeof rendered === "string" ? rendered : JSON.stringify(rendered) ?? String(rendered);
  if (typeof rendered === "string" && /^[^\s.*>]+$/.test(rendered)) return rendered;
  throw new TaskFailure({
    message: `task '${key}', field 'target': ${JSON.stringify(value.slice(0, 200))} is not an execution id`,
    code: "invalid_target",
    retryable: false,
    details: { task_id: key, field: "target", value: value.slice(0, 200) },
  });
}
