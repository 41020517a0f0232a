/**
 * Where a log record belongs: which run (correlation id) and which entity (workflow, task, agent or tool
 * execution) it is about, read from the record's properties. A record outside any run belongs to the process
 * that wrote it: `compozy.system.<component>.logs.<instance id>.<level>`.
 */
import { create } from "@bufbuild/protobuf";
import {
  buildSubject,
  type LogComponent,
  type LogLevelToken,
  SYSTEM_CORRELATION_ID,
} from "../nats/subjects.ts";
import { AgentInfoSchema, TaskInfoSchema, ToolInfoSchema, WorkflowInfoSchema } from "../pb/common_pb.ts";
import type { AgentInfo, TaskInfo, ToolInfo, WorkflowInfo } from "../pb/common_pb.ts";

/**
 * The property names that place a record in a run. Use them (snake_case, as in the JSON lines) when logging
 * about an execution, or set them once with `withContext`.
 */
export const ID_PROPERTIES = {
  correlationId: "correlation_id",
  workflowId: "workflow_id",
  workflowExecId: "workflow_exec_id",
  taskId: "task_id",
  taskExecId: "task_exec_id",
  agentId: "agent_id",
  agentExecId: "agent_exec_id",
  actionId: "action_id",
  toolId: "tool_id",
  toolExecId: "tool_exec_id",
} as const;

export type LogIds = { -readonly [K in keyof typeof ID_PROPERTIES]?: string };

/** The process a record falls back to when it names no run. */
export interface ProcessIdentity {
  component: LogComponent;
  instanceId: string;
}

export interface LogAddress {
  subject: string;
  correlationId: string;
  workflow?: WorkflowInfo;
  task?: TaskInfo;
  agent?: AgentInfo;
  tool?: ToolInfo;
}

/** The ids found in a record's properties; empty and non-scalar values are ignored. */
export function idsOf(properties: Record<string, unknown>): LogIds {
  const ids: LogIds = {};
  for (const [field, property] of Object.entries(ID_PROPERTIES) as [keyof LogIds, string][]) {
    const value = properties[property];
    if ((typeof value === "string" && value !== "") || typeof value === "number") ids[field] = String(value);
  }
  return ids;
}

/**
 * The subject and entity blocks of a record. The subject names the most specific execution mentioned (tool,
 * then agent, then task, then workflow); the correlation id is `correlation_id`, else the workflow execution
 * id (a root run's correlation id), else `system`. Ids that are not valid subject tokens (a `.` or a space)
 * cannot name a subject: the record then goes on the process's own subject, its ids still in the entity
 * blocks, rather than being lost.
 */
export function addressOf(ids: LogIds, level: LogLevelToken, process: ProcessIdentity): LogAddress {
  const correlationId = ids.correlationId ?? ids.workflowExecId ?? SYSTEM_CORRELATION_ID;
  const entity = mostSpecificEntity(ids);
  const address: LogAddress = {
    subject: systemSubject(level, process),
    correlationId,
    workflow: ids.workflowId || ids.workflowExecId
      ? create(WorkflowInfoSchema, { id: ids.workflowId, execId: ids.workflowExecId })
      : undefined,
    task: ids.taskId || ids.taskExecId
      ? create(TaskInfoSchema, { id: ids.taskId, execId: ids.taskExecId })
      : undefined,
    agent: ids.agentId || ids.agentExecId
      ? create(AgentInfoSchema, { id: ids.agentId, execId: ids.agentExecId, actionId: ids.actionId })
      : undefined,
    tool: ids.toolId || ids.toolExecId
      ? create(ToolInfoSchema, { id: ids.toolId, execId: ids.toolExecId })
      : undefined,
  };
  const component = entity?.component ?? process.component;
  const id = entity?.id ?? process.instanceId;
  try {
    address.subject = buildSubject({ correlationId, component, kind: "logs", id, type: level });
  } catch {
    // Not a valid subject token: keep the process subject set above (see the doc comment).
    address.correlationId = SYSTEM_CORRELATION_ID;
  }
  return address;
}

/** `compozy.system.<component>.logs.<instance id>.<level>`; the identity was validated at configuration. */
export function systemSubject(level: LogLevelToken, process: ProcessIdentity): string {
  return buildSubject({
    correlationId: SYSTEM_CORRELATION_ID,
    component: process.component,
    kind: "logs",
    id: process.instanceId,
    type: level,
  });
}

function mostSpecificEntity(ids: LogIds): { component: LogComponent; id: string } | undefined {
  if (ids.toolExecId) return { component: "tool", id: ids.toolExecId };
  if (ids.agentExecId) return { component: "agent", id: ids.agentExecId };
  if (ids.taskExecId) return { component: "task", id: ids.taskExecId };
  if (ids.workflowExecId) return { component: "workflow", id: ids.workflowExecId };
  return undefined;
}
