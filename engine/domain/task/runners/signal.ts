/** `signal`: sends a signal to one execution (`target`) or to every execution waiting for it. */
import { renderField } from "../template_scope.ts";
import type { TaskOf, TaskRunner } from "./types.ts";

export const signalRunner: TaskRunner<TaskOf<"signal">> = {
  async run({ driver, task, key, context }) {
    const payload = renderField(task.signal.payload ?? null, context, key, "signal.payload");
    const target = task.target === undefined
      ? undefined
      : String(renderField(task.target, context, key, "target"));
    const delivered = await driver.track(
      driver.services.signals.send(driver, task.signal.id, payload, target),
    );
    return { ok: true, output: { signal: task.signal.id, delivered } };
  },
};
