/**
 * The message catalogue: which Protobuf message travels on which subject. Encoding, decoding and subject
 * derivation all read this one table, so a new event is added here and nowhere else.
 */
import type { DescMessage, MessageShape } from "@bufbuild/protobuf";
import * as agent from "../pb/agent_pb.ts";
import * as log from "../pb/log_pb.ts";
import * as task from "../pb/task_pb.ts";
import * as tool from "../pb/tool_pb.ts";
import * as workflow from "../pb/workflow_pb.ts";
import type { Component, Kind } from "./subjects.ts";

export const CATALOGUE = {
  workflow: {
    cmds: {
      trigger: workflow.WorkflowTriggerSchema,
      execute: workflow.WorkflowExecuteSchema,
      cancel: workflow.WorkflowCancelSchema,
      pause: workflow.WorkflowPauseSchema,
      resume: workflow.WorkflowResumeSchema,
      signal: workflow.WorkflowSignalSchema,
    },
    evts: {
      started: workflow.WorkflowExecutionStartedSchema,
      paused: workflow.WorkflowExecutionPausedSchema,
      resumed: workflow.WorkflowExecutionResumedSchema,
      success: workflow.WorkflowExecutionSuccessSchema,
      failed: workflow.WorkflowExecutionFailedSchema,
      canceled: workflow.WorkflowExecutionCanceledSchema,
      timed_out: workflow.WorkflowExecutionTimedOutSchema,
      // A new lease holder's fence, appended before it reads the history (docs/engine.md).
      taken_over: workflow.WorkflowExecutionTakenOverSchema,
    },
  },
  task: {
    cmds: {
      execute: task.TaskExecuteSchema,
      resume: task.TaskResumeSchema,
    },
    evts: {
      dispatched: task.TaskDispatchedSchema,
      started: task.TaskExecutionStartedSchema,
      waiting_started: task.TaskExecutionWaitingStartedSchema,
      waiting_ended: task.TaskExecutionWaitingEndedSchema,
      waiting_timed_out: task.TaskExecutionWaitingTimedOutSchema,
      retry_scheduled: task.TaskExecutionRetryScheduledSchema,
      paused: task.TaskExecutionPausedSchema,
      resumed: task.TaskExecutionResumedSchema,
      success: task.TaskExecutionSuccessSchema,
      failed: task.TaskExecutionFailedSchema,
      canceled: task.TaskExecutionCanceledSchema,
      timed_out: task.TaskExecutionTimedOutSchema,
    },
  },
  agent: {
    cmds: { execute: agent.AgentExecuteSchema },
    evts: {
      started: agent.AgentExecutionStartedSchema,
      // The turns of a loop: each stored (awaited) before the loop goes on, replayed after a crash.
      model_replied: agent.AgentModelRepliedSchema,
      tool_call_ended: agent.AgentToolCallEndedSchema,
      success: agent.AgentExecutionSuccessSchema,
      failed: agent.AgentExecutionFailedSchema,
    },
    // Not stored: the text of a reply while it streams, for live views (core NATS only).
    live: { delta: agent.AgentDeltaSchema },
  },
  tool: {
    cmds: { execute: tool.ToolExecuteSchema },
    evts: {
      started: tool.ToolExecutionStartedSchema,
      success: tool.ToolExecutionSuccessSchema,
      failed: tool.ToolExecutionFailedSchema,
    },
  },
} as const;

/** Log records share one message type whatever their component and level. */
export const LOG_SCHEMA = log.LogEmittedSchema;

type Catalogue = typeof CATALOGUE;
/** Every message schema that travels as a command or state event. */
export type CatalogueSchema = {
  [C in keyof Catalogue]: {
    [K in keyof Catalogue[C]]: Catalogue[C][K][keyof Catalogue[C][K]];
  }[keyof Catalogue[C]];
}[keyof Catalogue];
/** Every command or state event message. */
export type BusMessage = MessageShape<CatalogueSchema>;

/** Where a message type lives: its component, kind and subject type. */
export interface Address {
  component: Component;
  kind: Extract<Kind, "cmds" | "evts" | "live">;
  type: string;
}

const addresses = new Map<string, Address>();
const schemas = new Map<string, DescMessage>();
for (const [component, kinds] of Object.entries(CATALOGUE)) {
  for (const [kind, types] of Object.entries(kinds)) {
    for (const [type, schema] of Object.entries(types as Record<string, DescMessage>)) {
      addresses.set(schema.typeName, { component, kind, type } as Address);
      schemas.set(schema.typeName, schema);
    }
  }
}

/** The address of a catalogued message type, or undefined for a type that has no subject of its own. */
export function addressOf(typeName: string): Address | undefined {
  return addresses.get(typeName);
}

/** The schema that a subject's component, kind and type promise, or undefined when none does. */
export function schemaFor(component: string, kind: string, type: string): DescMessage | undefined {
  if (kind === "logs") return LOG_SCHEMA;
  const kinds = (CATALOGUE as Record<string, Record<string, Record<string, DescMessage>>>)[component];
  return kinds?.[kind]?.[type];
}

/** The schema of a catalogued message type; throws for a type outside the catalogue. */
export function schemaOf(typeName: string): DescMessage {
  const schema = schemas.get(typeName);
  if (!schema) throw new Error(`${typeName} is not in the message catalogue`);
  return schema;
}
