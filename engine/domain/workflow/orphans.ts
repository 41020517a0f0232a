/** Executions whose workflow is no longer in the loaded project cannot be driven: they fail, named. */
import { create } from "@bufbuild/protobuf";
import type { Bus } from "../../../pkg/nats/mod.ts";
import { WorkflowExecutionFailedSchema } from "../../../pkg/pb/mod.ts";

export async function failOrphan(bus: Bus, execId: string, correlationId: string, workflowId: string) {
  await bus.publish(create(WorkflowExecutionFailedSchema, {
    metadata: bus.metadata(correlationId, `${execId}:failed`),
    workflow: { id: workflowId, execId },
    error: {
      message: `workflow '${workflowId}' is not in the loaded project; the execution cannot go on`,
      code: "unknown_workflow",
    },
  }));
}
