/**
 * The `.env` that trigger templates (a webhook's `secret` and `input`, a schedule's `input`) see: the same
 * layers as a workflow's tasks, minus the task's own (env file, process environment, project, workflow).
 *
 * @module
 */
import type { Project } from "../domain/project/types.ts";
import { mergeEnv } from "../domain/task/template_scope.ts";
import type { Workflow } from "../domain/workflow/definition.ts";

export function triggerEnv(
  project: Project,
  workflow: Workflow,
  processEnv: Record<string, string>,
): Record<string, string> {
  try {
    return mergeEnv([project.envFile, processEnv, project.env, workflow.config.env], {});
  } catch {
    // An env value templated on run-time data (e.g. `.workflow.input`) cannot be known at trigger time;
    // triggers then see the layers as written.
    return { ...project.envFile, ...processEnv, ...project.env, ...workflow.config.env };
  }
}
