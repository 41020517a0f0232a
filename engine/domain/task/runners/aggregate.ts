/** `aggregate`: its output is its `outputs`, rendered. */
import { renderField } from "../template_scope.ts";
import type { TaskOf, TaskRunner } from "./types.ts";

export const aggregateRunner: TaskRunner<TaskOf<"aggregate">> = {
  rendersOutputs: true,
  run: ({ task, key, context }) =>
    Promise.resolve({ ok: true, output: renderField(task.outputs, context, key, "outputs") }),
};
