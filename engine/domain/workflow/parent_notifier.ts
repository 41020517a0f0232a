/** Wakes the parent of a sub-workflow that ended: a TaskResume ("child") carrying the child's outcome. */
import { create } from "@bufbuild/protobuf";
import type { Bus } from "../../../pkg/nats/mod.ts";
import { TaskResumeSchema } from "../../../pkg/pb/mod.ts";
import { jsonBytes } from "../../json_bytes.ts";
import type { ExecutionDriver } from "./execution_driver.ts";

export async function notifyParent(bus: Bus, driver: ExecutionDriver): Promise<void> {
  const parent = driver.replay.parent;
  if (!parent || !driver.result) return;
  await bus.publish(create(TaskResumeSchema, {
    // One notification per child, however often it is re-sent after a crash.
    metadata: bus.metadata(driver.correlationId, `${driver.execId}:notify-parent`),
    workflow: { id: parent.workflowId, execId: parent.execId },
    task: { id: parent.taskId, execId: parent.taskExecId },
    reason: "child",
    payloadJson: jsonBytes(driver.result),
  }));
}
