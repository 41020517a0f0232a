/** `composite`: runs its children in order as one step; its output is the last child's. */
import type { TaskOf, TaskRunner } from "./types.ts";
import { childFailure, inContainer, restoreChildren } from "./children.ts";

export const compositeRunner: TaskRunner<TaskOf<"composite">> = {
  run: (run) =>
    inContainer(run, async (key, scope) => {
      let output: unknown = null;
      for (const child of run.task.tasks) {
        const outcome = await run.driver.runTask(child, `${key}/${child.id}`, scope);
        if (!outcome.ok) throw childFailure(key, child.id, outcome);
        output = outcome.output;
      }
      return output;
    }),
  replayed: restoreChildren,
};
