/** The real DriverServices: timers, sub-workflows, signals and agent requests, all over NATS. */
import { create } from "@bufbuild/protobuf";
import { jetstreamManager } from "@nats-io/jetstream";
import {
  answeredRead,
  type Bus,
  MessageTooLargeError,
  RequestError,
  STREAMS,
  subjectOf,
} from "../../../pkg/nats/mod.ts";
import { ChildStartUnansweredError } from "../../errors.ts";
import {
  TaskResumeSchema,
  WorkflowCancelSchema,
  WorkflowSignalSchema,
  WorkflowTriggerReplySchema,
  WorkflowTriggerSchema,
} from "../../../pkg/pb/mod.ts";
import type { TemplateContext } from "../../../pkg/tplengine/mod.ts";
import { fromErrorInfo, TaskFailure } from "../../failure.ts";
import { uuidv7 } from "../../ids.ts";
import { jsonBytes } from "../../json_bytes.ts";
import { isTerminal, type WorkflowDocument } from "../../state/execution_state.ts";
import type { StateStore } from "../../state/state_store.ts";
import { mcpWireServers } from "../mcp/mcp_wire.ts";
import { parseMcpToolReference } from "../mcp/tool_reference.ts";
import { type AgentDefinition, type Project, resolveUse } from "../project/mod.ts";
import {
  type AgentRequest,
  inputTooLarge,
  LeafExecutor,
  toolEnv,
  toolTimeoutMs,
  toolWireDefinition,
} from "../task/leaf_executor.ts";
import type { RuntimeCallTiming } from "../task/runtime_call.ts";
import { renderField } from "../task/template_scope.ts";
import type { DriverRef, DriverServices } from "./driver_services.ts";
import { EventRecorder, type WriteFence } from "./event_recorder.ts";
import type { DroppedSignalLog } from "../../dropped_signals.ts";

export function createDriverServices(
  bus: Bus,
  project: Project,
  store: StateStore,
  droppedSignals: DroppedSignalLog,
  fence?: WriteFence,
  runtimeCallTiming?: RuntimeCallTiming,
  sandboxWaitMs?: number,
): DriverServices {
  return {
    events: new EventRecorder(bus, fence),
    leaf: new LeafExecutor(bus, runtimeCallTiming, sandboxWaitMs),
    processEnv: Deno.env.toObject(),
    droppedSignals,
    timers: {
      async schedule(d, key, execId, reason, dueMs, attempt) {
        await bus.publish(
          create(TaskResumeSchema, {
            metadata: bus.metadata(d.correlationId, `${execId}:${reason}:${attempt}`),
            workflow: { id: d.workflow.id, execId: d.execId },
            task: { id: key, execId },
            reason,
            // The attempt it belongs to: a timer of an earlier attempt does not wake a later one.
            payloadJson: jsonBytes({ attempt }),
            dueUnixMs: BigInt(dueMs),
          }),
          { signal: d.givenUp },
        );
      },
      async clearWorkflowTimeout(d) {
        // The workflow's timer is the only one addressed to the execution itself (see armWorkflowTimeout).
        // Deleted by its sequence, never purged: a filtered purge of a work-queue stream makes nats-server 2.9
        // forget every message its consumer holds back (the other executions' timers: finding G5).
        const jsm = await jetstreamManager(bus.nc);
        const subject = subjectOf(create(TaskResumeSchema, {
          metadata: bus.metadata(d.correlationId),
          task: { execId: d.execId },
        }));
        const timer = await jsm.streams.getMessage(STREAMS.taskCommands, { last_by_subj: subject });
        if (timer) await jsm.streams.deleteMessage(STREAMS.taskCommands, timer.seq, false);
      },
      async clearTaskTimer(d, execId) {
        // By its sequence, like the workflow's (finding G5); a wait's time-out is its task's only timer.
        const jsm = await jetstreamManager(bus.nc);
        const subject = subjectOf(create(TaskResumeSchema, {
          metadata: bus.metadata(d.correlationId),
          task: { execId },
        }));
        const timer = await jsm.streams.getMessage(STREAMS.taskCommands, { last_by_subj: subject });
        if (timer) await jsm.streams.deleteMessage(STREAMS.taskCommands, timer.seq, false);
      },
    },
    children: {
      async start(d, child, key, execId, attempt, input) {
        const reply = await bus.request(
          create(WorkflowTriggerSchema, {
            metadata: bus.metadata(d.correlationId),
            workflow: { id: child.id, execId: uuidv7() },
            inputJson: jsonBytes(input),
            // One child per attempt of the task, however often the parent replays this step.
            idempotencyKey: attempt > 1 ? `child:${execId}:${attempt}` : `child:${execId}`,
            triggerSource: "workflow",
            parent: { workflow: { id: d.workflow.id, execId: d.execId }, task: { id: key, execId } },
          }),
          WorkflowTriggerReplySchema,
          { timeoutMs: 10_000, deadlineMs: 30_000 },
        ).catch((e) => {
          if (e instanceof MessageTooLargeError) {
            throw inputTooLarge(`the start of sub-workflow '${child.id}' (its input)`, e);
          }
          if (e instanceof RequestError) throw new ChildStartUnansweredError(child.id, e);
          throw e;
        });
        if (reply.error) throw fromErrorInfo(reply.error);
        return reply.execId;
      },
      async cancel(d, childExecIds, reason) {
        for (const childExecId of new Set(childExecIds)) await sendCancel(bus, d, childExecId, reason);
      },
      async cancelAll(d, known, reason) {
        // A driver replaying for this end may not have met its children yet: the state knows them too.
        const found = (await store.findChildren(d.execId)).map((child) => child.exec_id);
        for (const childExecId of new Set([...known, ...found])) {
          await sendCancel(bus, d, childExecId, reason);
        }
      },
      async cancelOfTask(d, taskExecId, reason) {
        // The orchestrator indexes a child before it answers its start: a start it handled is found here.
        const found = (await store.findChildren(d.execId)).filter((c) =>
          c.parent?.task_exec_id === taskExecId
        );
        for (const child of found) await sendCancel(bus, d, child.exec_id, reason);
      },
    },
    signals: {
      async targets(_d, signalId, target) {
        // Unanswered (NATS or this process stalled), the look-up gives the execution up to be replayed: a
        // task failed 'timeout' for it (two-engine crash fuzz, seed 37214).
        const found = await answeredRead(
          target
            ? `the look-up of execution ${target}`
            : `the look-up of the executions waiting for ${signalId}`,
          async () => target ? [await store.getWorkflow(target)] : await store.findWaiting(signalId),
        );
        // An ended target takes no signal (the API answers 409 for one): it is not sent, nor counted.
        return found.filter((doc): doc is WorkflowDocument => doc !== undefined && !isTerminal(doc.status))
          .map((doc) => ({
            exec_id: doc.exec_id,
            workflow_id: doc.workflow_id,
            correlation_id: doc.correlation_id,
          }));
      },
      async send(_d, signalId, payload, targets, sender) {
        for (const target of targets) {
          // A sub-workflow's subjects carry its root's correlation id, so the signal must too.
          // One message id per sending task and target: a replay that sends again (the task's success was
          // not stored: a crash, a lost lease) is not taken by a second wait of the target.
          await bus.publish(create(WorkflowSignalSchema, {
            metadata: bus.metadata(target.correlation_id, `${sender}:signal:${target.exec_id}`),
            workflow: { id: target.workflow_id, execId: target.exec_id },
            signalId,
            payloadJson: jsonBytes(payload),
          }));
        }
      },
    },
    agents: {
      prepare: (d, agent, actionId, input, context, key) =>
        prepareAgent(project, d, agent, actionId, input, context, key),
    },
  };
}

/**
 * Tells one sub-workflow to cancel. Its message id is per child, so a cancel sent again (a replayed end, a
 * given-up task's clean-up) is stored once.
 */
async function sendCancel(bus: Bus, d: DriverRef, childExecId: string, reason: string): Promise<void> {
  await bus.publish(create(WorkflowCancelSchema, {
    metadata: bus.metadata(d.correlationId, `${childExecId}:cancel`),
    workflow: { execId: childExecId },
    reason: `parent ${d.execId}: ${reason}`,
  }));
}

/** Resolves an agent's model and tools and renders its action prompt (CONFIG.md agents and actions). */
function prepareAgent(
  project: Project,
  d: DriverRef,
  agent: AgentDefinition,
  actionId: string | undefined,
  input: unknown,
  context: TemplateContext,
  key: string,
): AgentRequest {
  const { $model, ...inline } = agent.config;
  const base = $model ? project.models.get($model) : undefined;
  const model = { ...base, ...Object.fromEntries(Object.entries(inline).filter(([, v]) => v !== undefined)) };
  delete (model as { id?: string }).id;
  // With the action's `.input`, as its prompt: a mock model's scripted replies name it.
  const renderedModel = renderField(model, { ...context, input }, key, "agent.config") as Record<
    string,
    unknown
  >;
  const action = actionId ? agent.actions?.find((a) => a.id === actionId) : undefined;
  if (actionId && !action) {
    throw new TaskFailure({
      message: `agent '${agent.id}' has no action '${actionId}'`,
      code: "unknown_action",
      retryable: false,
    });
  }
  const prompt = action
    ? String(renderField(action.prompt, { ...context, input }, key, "action.prompt"))
    : typeof input === "string"
    ? input
    : typeof (input as { prompt?: unknown })?.prompt === "string"
    ? (input as { prompt: string }).prompt
    : JSON.stringify(input);
  const env = context.env as Record<string, string>;
  const tools = (agent.tools ?? []).filter((entry) => !parseMcpToolReference(entry)).map((id) => {
    const resolved = resolveUse(project, d.workflow, `tool(id=${id})`);
    if (resolved.kind !== "tool") {
      throw new TaskFailure({
        message: `agent tool '${id}' is not a tool`,
        code: "config_error",
        retryable: false,
      });
    }
    return {
      ...toolWireDefinition(resolved.tool, toolTimeoutMs(resolved.tool)),
      env: toolEnv(resolved.tool, env),
    };
  });
  return {
    agentId: agent.id,
    actionId: actionId ?? "",
    prompt,
    definition: {
      model: renderedModel,
      instructions: agent.instructions,
      outputSchema: action?.output,
      maxSteps: agent.max_steps ?? 10,
      budget: agent.budget,
      tools,
      mcp: mcpWireServers(project, agent.tools ?? [], context, key),
      memory: agent.memory && memoryWire(project, agent, renderedModel, { ...context, input }, key),
    },
  };
}

/** CONFIG: an agent's memory window when it sets none. */
const DEFAULT_MEMORY_WINDOW = 20;

/**
 * The agent's rendered memory key, scoped to the project (two projects on one NATS never share a
 * conversation), and its window.
 */
function memoryWire(
  project: Project,
  agent: AgentDefinition,
  agentModel: Record<string, unknown>,
  context: TemplateContext,
  key: string,
) {
  const rendered = renderField(agent.memory!.key, context, key, "agent.memory.key");
  if (typeof rendered !== "string" || rendered.trim() === "") {
    throw new TaskFailure({
      message: `task '${key}', field 'agent.memory.key': agent '${agent.id}' memory key rendered to ${
        JSON.stringify(rendered)
      }, not a non-empty string`,
      code: "config_error",
      retryable: false,
    });
  }
  const { window, window_tokens: windowTokens, summarize } = agent.memory!;
  return {
    key: `${project.config.name}/${rendered}`,
    window: window ?? DEFAULT_MEMORY_WINDOW,
    ...(windowTokens ? { windowTokens } : {}),
    ...(summarize ? { summarizer: summarizerWire(project, summarize, agentModel, context, key) } : {}),
  };
}

/** CONFIG: a summary is at most this many tokens when `summarize` sets none. */
const DEFAULT_SUMMARY_MAX_TOKENS = 400;

/** The model that summarizes what falls out of a memory's window: the agent's own, or a project model. */
function summarizerWire(
  project: Project,
  summarize: true | { $model?: string; max_tokens?: number },
  agentModel: Record<string, unknown>,
  context: TemplateContext,
  key: string,
) {
  const options = summarize === true ? {} : summarize;
  const base = options.$model ? project.models.get(options.$model) : undefined;
  if (options.$model && !base) {
    throw new TaskFailure({
      message:
        `task '${key}', field 'agent.memory.summarize.$model': no model '${options.$model}' in the project`,
      code: "config_error",
      retryable: false,
    });
  }
  const model = base
    ? renderField(
      Object.fromEntries(Object.entries(base).filter(([k]) => k !== "id")),
      context,
      key,
      "models",
    )
    : agentModel;
  return { model, maxTokens: options.max_tokens ?? DEFAULT_SUMMARY_MAX_TOKENS };
}
