/** `signal`: sends a signal to one execution (`target`) or to every execution waiting for it. */
import { TaskFailure } from "../../../failure.ts";
import { renderField } from "../template_scope.ts";
import type { TaskOf, TaskRunner } from "./types.ts";

export const signalRunner: TaskRunner<TaskOf<"signal">> = {
  async run({ driver, task, key, execId, context }) {
    const payload = renderField(task.signal.payload ?? null, context, key, "signal.payload");
    const target = task.target === undefined
      ? undefined
      : executionId(renderField(task.target, context, key, "target"), key);
    const signals = driver.services.signals;
    const sent = await driver.track(signals.send(driver, task.signal.id, payload, target, execId));
    // A broadcast finds waits in the compozy_waiting index, written once the state manager folds their
    // `task.waiting_started`: a wait of this very execution started a moment ago (a sibling branch) is not
    // there yet, and the signal missed it (outside review 2026-12-05 O1). This driver knows its own waits.
    if (target === undefined && !sent.includes(driver.execId) && driver.waitsForSignal(task.signal.id)) {
      sent.push(...await driver.track(signals.send(driver, task.signal.id, payload, driver.execId, execId)));
    }
    return { ok: true, output: { signal: task.signal.id, delivered: sent.length } };
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
