/**
 * An execution whose history has an open task the loaded workflow no longer declares (a reload or deployment
 * renamed or removed it) cannot be replayed faithfully: the replay would start the renamed task anew beside
 * the recorded one, which stays open for good. It fails instead, naming the task.
 *
 * @module
 */
import { create } from "@bufbuild/protobuf";
import type { Bus } from "../../../pkg/nats/mod.ts";
import { WorkflowExecutionFailedSchema } from "../../../pkg/pb/mod.ts";
import { hasEnded, type ReplayState } from "../../history/replay_state.ts";
import type { Workflow } from "./definition.ts";

/**
 * The key of the first open task of `replay` that names a task `workflow` does not declare, if any. A key is
 * task ids joined by `/` (a container's children), each maybe followed by `#<attempt>` and `[<item index>]`.
 */
export function openTaskNotDeclared(replay: ReplayState, workflow: Workflow): string | undefined {
  for (const [key, record] of replay.tasks) {
    if (hasEnded(record)) continue;
    const ids = key.split("/").map((segment) => segment.replace(/(#\d+|\[\d+\])+$/, ""));
    if (ids.some((id) => !workflow.tasks.has(id))) return key;
  }
  return undefined;
}

export async function failDefinitionChanged(
  bus: Bus,
  execId: string,
  correlationId: string,
  workflowId: string,
  taskKey: string,
): Promise<void> {
  await bus.publish(create(WorkflowExecutionFailedSchema, {
    metadata: bus.metadata(correlationId, `${execId}:failed`),
    workflow: { id: workflowId, execId },
    error: {
      message: `task '${taskKey}' of this execution is not in workflow '${workflowId}' as loaded now ` +
        "(renamed or removed by a reload); the execution cannot go on",
      code: "definition_changed",
    },
  }));
}
