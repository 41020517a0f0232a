/** Wakes the parent of a sub-workflow that ended: a TaskResume ("child") carrying the child's outcome. */
import { create } from "@bufbuild/protobuf";
import type { Bus } from "../../../pkg/nats/mod.ts";
import { TaskResumeSchema } from "../../../pkg/pb/mod.ts";
import type { ReplayState } from "../../history/replay_state.ts";
import { jsonBytes } from "../../json_bytes.ts";

/** An execution that ended, as its parent needs to hear of it. */
export interface EndedExecution {
  execId: string;
  correlationId: string;
  parent?: ReplayState["parent"];
  outcome?: ReplayState["outcome"];
}

export async function notifyParent(bus: Bus, ended: EndedExecution): Promise<void> {
  const { parent, outcome } = ended;
  if (!parent || !outcome) return;
  await bus.publish(create(TaskResumeSchema, {
    // One notification per child, however often it is re-sent after a crash.
    metadata: bus.metadata(ended.correlationId, `${ended.execId}:notify-parent`),
    workflow: { id: parent.workflowId, execId: parent.execId },
    task: { id: parent.taskId, execId: parent.taskExecId },
    reason: "child",
    // The child's id goes with its outcome: a parent task retried since waits for another child.
    payloadJson: jsonBytes({ ...outcome, exec_id: ended.execId }),
  }));
}
