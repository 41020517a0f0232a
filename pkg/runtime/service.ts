/**
 * The runtime service: answers ToolExecute and AgentExecute requests from NATS, runs them in the sandbox
 * (tools) or the agent loop (agents, whose tools run in the same sandbox), and reports the outcome in the
 * reply. Started/Success/Failed events go to the EVENTS stream without waiting: the engine records the
 * task's outcome itself before anything depends on it.
 */
import { create, type DescMessage, type MessageShape } from "@bufbuild/protobuf";
import type { NatsConnection, Subscription } from "@nats-io/transport-node";
import { type Bus, LeftUnanswered } from "../nats/mod.ts";
import * as pb from "../pb/mod.ts";
import { forwardToolLog } from "../logger/mod.ts";
import { toErrorInfo } from "../utils/failure.ts";
import type { AgentBudget, AgentResult, ToolCallRef } from "./agent/agent_call.ts";
import { AgentFailure, ToolCallGivenUp } from "./agent/agent_failure.ts";
import { TaskSpend } from "./agent/task_spend.ts";
import { AgentLoops } from "./agent_loops.ts";
import { AgentMemory, type MemorySpec } from "./agent_memory.ts";
import { openAgentTools } from "./agent_tools.ts";
import { journalOf } from "./agent_turns.ts";
import { AgentTurnFences } from "./agent_turn_fence.ts";
import { HeldCalls } from "./held_calls.ts";
import { liveDeltas } from "./agent_deltas.ts";
import type { McpServerWire } from "./mcp/mcp_server_wire.ts";
import { busOutputLimit } from "./output_limits.ts";
import {
  type ToolCall,
  ToolFailure,
  type ToolPermissions,
  type ToolResult,
  ToolRunner,
} from "./tool_runner.ts";

/** The core NATS subject the runtime answers while it is consuming (see docs/operations.md). */
export const RUNTIME_HEALTH_SUBJECT = "compozy.health.runtime";

/** A tool as the engine sends it (engine/domain/task/leaf_executor.ts, toolWireDefinition). */
interface ToolWire {
  id: string;
  description?: string;
  executePath: string;
  inputSchema?: Record<string, unknown>;
  outputSchema?: Record<string, unknown>;
  permissions?: ToolPermissions;
  timeoutMs: number;
  env?: Record<string, string>;
}

interface AgentWire {
  model: Record<string, unknown>;
  instructions: string;
  outputSchema?: Record<string, unknown>;
  maxSteps: number;
  budget?: AgentBudget;
  workflowBudget?: AgentBudget;
  tools: ToolWire[];
  /** MCP servers whose tools the agent may call (absent from engines before MCP support). */
  mcp?: McpServerWire[];
  /** The conversation to continue (agent_memory.ts); absent: the agent remembers nothing. */
  memory?: MemorySpec;
}

export interface RuntimeOptions {
  nc: NatsConnection;
  bus: Bus;
  runner?: ToolRunner;
  /** How long a sandbox may take to start (ToolRunner's default, 10 s, when unset). */
  sandboxStartTimeoutMs?: number;
  /** File descriptors each sandbox process may hold (ToolRunner's default, 128, when unset). */
  sandboxMaxDescriptors?: number;
  /** The most bytes a file a tool writes may hold (ToolRunner's default, 256 MiB, when unset). */
  sandboxMaxFileBytes?: number;
  /** The most bytes of files one call may write (ToolRunner's default, 1 GiB, when unset). */
  sandboxMaxCallWriteBytes?: number;
  /** How long a dead runner's claim on an agent turn stands (AgentTurnFences' default, 15 s, when unset). */
  agentTurnLeaseMs?: number;
}

export interface RuntimeHandle {
  runner: ToolRunner;
  /**
   * Takes no more calls and resolves once the calls running here have ended and been answered (a restart
   * after tool code changed: the calls end on the code they started with, new ones go to the new runtime).
   * Cancels are still heard meanwhile. Call `stop` after it.
   */
  drain(): Promise<void>;
  stop(): Promise<void>;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const DEFAULT_MAX_OUTPUT_BYTES = 4 * 1024 * 1024;
/** How long a stopping runtime waits for its calls to end (and their MCP servers to exit). */
const STOP_PATIENCE_MS = 6_000;

export function startRuntime(options: RuntimeOptions): RuntimeHandle {
  const { nc, bus } = options;
  // An output must fit in one reply: the sandbox refuses a larger one before it leaves the tool.
  const outputLimit = () => busOutputLimit(nc.info?.max_payload, DEFAULT_MAX_OUTPUT_BYTES);
  const runner = options.runner ??
    new ToolRunner({
      maxOutputBytes: Math.min(DEFAULT_MAX_OUTPUT_BYTES, outputLimit()),
      startTimeoutMs: options.sandboxStartTimeoutMs,
      maxDescriptors: options.sandboxMaxDescriptors,
      maxFileBytes: options.sandboxMaxFileBytes,
      maxCallWriteBytes: options.sandboxMaxCallWriteBytes,
    });
  const memory = new AgentMemory(nc);
  const fences = new AgentTurnFences(nc, options.agentTurnLeaseMs);
  const cancels = new CancelHook();
  const loops = new AgentLoops<pb.AgentExecuteResult>();
  const held = new HeldCalls(nc);
  // Set once `stop` begins: a call that then fails (its sandbox killed, its turn for a sandbox never come) failed
  // because this runtime stopped, not on its own, so it gets no answer and the engine sends it again to the
  // next runtime, as it does when a runtime dies (outside review E7: answered, it failed its execution).
  let stopping = false;
  // The engine records a task it gave up (canceled execution, decided race, time-out) on this subject.
  const canceled = bus.subscribe("compozy.*.task.evts.*.canceled", (m) => {
    const taskExecId = (m as pb.TaskExecutionCanceled).task?.execId ?? "";
    loops.canceled(taskExecId);
    cancels.cancel(taskExecId);
  });
  const calls: Subscription[] = [
    bus.serve(
      "compozy.*.tool.cmds.*.execute",
      "compozy-runtime",
      pb.ToolExecuteResultSchema,
      (m) =>
        held.hold(
          (m as pb.ToolExecute).tool?.execId ?? "",
          () =>
            executeTool(
              bus,
              runner,
              m as pb.ToolExecute & MessageShape<DescMessage>,
              outputLimit(),
              cancels,
              () => stopping,
            ),
        ),
    ),
    bus.serve(
      "compozy.*.agent.cmds.*.execute",
      "compozy-runtime",
      pb.AgentExecuteResultSchema,
      (m) =>
        held.hold((m as pb.AgentExecute).agent?.execId ?? "", () =>
          loops.run(
            (m as pb.AgentExecute).task?.execId ?? "",
            () =>
              executeAgent(bus, runner, m as pb.AgentExecute & MessageShape<DescMessage>, cancels, {
                maxOutputBytes: Math.min(DEFAULT_MAX_OUTPUT_BYTES, outputLimit()),
                maxReplyBytes: outputLimit(),
                memory,
                fences,
                stopping: () => stopping,
              }),
          )),
    ),
    nc.subscribe(RUNTIME_HEALTH_SUBJECT, {
      callback: (_err, msg) => {
        msg.respond(encoder.encode(JSON.stringify({ ok: true, ...runner.stats() })));
      },
    }),
  ];
  return {
    runner,
    async drain() {
      for (const sub of calls) sub.unsubscribe();
      await held.idle();
    },
    async stop() {
      stopping = true;
      for (const sub of [...calls, canceled]) sub.unsubscribe();
      // Every call ends now, unanswered (see `stopping`); an agent call's end closes its MCP servers, whose
      // stdio processes would otherwise outlive the runtime (outside review A4). Their close is bounded by the
      // MCP SDK (it kills a server that has not exited 4 s after its stdin closed).
      cancels.abortAll("the runtime is stopping");
      await runner.close();
      let patience: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([
        held.idle(),
        new Promise((resolve) => patience = setTimeout(resolve, STOP_PATIENCE_MS)),
      ]);
      clearTimeout(patience); // Not left to hold an embedder's event loop for the rest of the 6 s.
    },
  };
}

async function executeTool(
  bus: Bus,
  runner: ToolRunner,
  message: pb.ToolExecute,
  outputLimit: number,
  cancels: CancelHook,
  stopping: () => boolean,
) {
  const tool = JSON.parse(decoder.decode(message.definitionJson)) as ToolWire;
  const ids = {
    metadata: bus.metadata(message.metadata?.correlationId ?? ""),
    workflow: message.workflow,
    task: message.task,
    tool: message.tool,
  };
  bus.publishCore(create(pb.ToolExecutionStartedSchema, ids));
  const canceled = cancels.track(message.task?.execId ?? "");
  const ran = await runner.run({
    ...toolCall(message, tool, parseJson(message.inputJson), message.env),
    signal: canceled.signal,
  }).finally(canceled.done);
  if (!ran.ok && stopping()) throw new LeftUnanswered("the runtime is stopping");
  const outputJson = ran.ok ? encoder.encode(JSON.stringify(ran.output ?? null)) : undefined;
  const result = outputJson && outputJson.length > outputLimit
    ? tooLargeForBus(tool, ran, outputJson, outputLimit)
    : ran;
  if (result.ok) {
    const success = create(pb.ToolExecutionSuccessSchema, {
      ...ids,
      metadata: bus.metadata(message.metadata?.correlationId ?? ""),
      outputJson,
      durationMs: BigInt(Math.round(result.durationMs)),
    });
    bus.publishCore(success);
    return create(pb.ToolExecuteResultSchema, { result: { case: "success", value: success } });
  }
  const failed = create(pb.ToolExecutionFailedSchema, {
    ...ids,
    metadata: bus.metadata(message.metadata?.correlationId ?? ""),
    error: toErrorInfo(result.failure),
    durationMs: BigInt(Math.round(result.durationMs)),
  });
  bus.publishCore(failed);
  return create(pb.ToolExecuteResultSchema, { result: { case: "failed", value: failed } });
}

/** A result the runner accepted but one NATS message cannot carry (a runner with a larger limit). */
function tooLargeForBus(tool: ToolWire, ran: ToolResult, outputJson: Uint8Array, limit: number): ToolResult {
  const failure = new ToolFailure(
    "tool_output_too_large",
    `Tool "${tool.id}" returned ${outputJson.length} bytes of output, over the ${limit} bytes one bus message carries`,
    { details: { bytes: outputJson.length, limit } },
  );
  return { ok: false, failure, durationMs: ran.durationMs };
}

/**
 * Tool calls and agent loops running here by task execution id, so that the engine's
 * `TaskExecutionCanceled` stops them: a tool call's sandbox process is killed (the call fails
 * `tool_canceled`), an agent loop's model request in flight is aborted and so is its tool call.
 */
class CancelHook {
  /** A set per task: a redelivered command can run beside the first delivery of the same task. */
  private readonly running = new Map<string, Set<AbortController>>();

  /** A signal that aborts when the task is canceled; `done` must be called when the work ends. */
  track(taskExecId: string): { signal: AbortSignal; done(): void } {
    const controller = new AbortController();
    const running = this.running.get(taskExecId) ?? new Set();
    this.running.set(taskExecId, running.add(controller));
    return {
      signal: controller.signal,
      done: () => {
        running.delete(controller);
        if (running.size === 0 && this.running.get(taskExecId) === running) this.running.delete(taskExecId);
      },
    };
  }

  cancel(taskExecId: string): void {
    for (const controller of this.running.get(taskExecId) ?? []) {
      controller.abort(new Error(`task ${taskExecId} was canceled by the engine`));
    }
  }

  /** Aborts every call tracked here (the runtime is stopping). */
  abortAll(reason: string): void {
    for (const running of this.running.values()) {
      for (const controller of running) controller.abort(new Error(reason));
    }
  }
}

async function executeAgent(
  bus: Bus,
  runner: ToolRunner,
  message: pb.AgentExecute,
  cancels: CancelHook,
  deps: {
    maxOutputBytes: number;
    maxReplyBytes: number;
    memory: AgentMemory;
    fences: AgentTurnFences;
    stopping: () => boolean;
  },
) {
  const agent = JSON.parse(decoder.decode(message.definitionJson)) as AgentWire;
  const correlationId = message.metadata?.correlationId ?? "";
  const ids = { workflow: message.workflow, task: message.task, agent: message.agent };
  bus.publishCore(create(pb.AgentExecutionStartedSchema, { ...ids, metadata: bus.metadata(correlationId) }));
  const tools = new Map(agent.tools.map((t) => [t.id, t]));
  const runOwnTool = async (toolId: string, input: unknown, ref: ToolCallRef) => {
    const tool = tools.get(toolId)!;
    // Each call of the loop is its own step: `ctx.taskExecId` is `<task exec id>:<turn>:<index>`, stable
    // across re-runs of the task (its turn is replayed from the history) and never shared by two calls.
    const call = toolCall(message, tool, input, tool.env ?? {}, ref.key);
    const outcome = await runner.run({ ...call, signal: canceled.signal });
    if (outcome.ok) return outcome.output;
    throw outcome.failure;
  };
  const canceled = cancels.track(message.task?.execId ?? "");
  const timeLimit = callTimeLimit(Number(message.timeoutMs) || 300_000);
  const signal = AbortSignal.any([timeLimit.signal, canceled.signal]);
  const taskExecId = message.task?.execId ?? "";
  let result: AgentResult;
  try {
    const history = agent.memory ? await deps.memory.read(agent.memory, taskExecId) : undefined;
    const agentTools = await openAgentTools(
      agent.tools.map((t) => ({ id: t.id, description: t.description, inputSchema: t.inputSchema })),
      runOwnTool,
      agent.mcp ?? [],
      {
        maxOutputBytes: deps.maxOutputBytes,
        signal,
        onServerOutput: (server, text) =>
          forwardToolLog("info", `[mcp ${server}] ${text}`, {
            correlationId,
            workflowId: message.workflow?.id,
            workflowExecId: message.workflow?.execId,
            taskId: message.task?.id,
            taskExecId: message.task?.execId,
            agentId: message.agent?.id ?? "",
            agentExecId: message.agent?.execId ?? "",
          }),
      },
    );
    try {
      // The agent loop, the AI SDK and the provider a model names load at the first agent call: a runtime
      // whose project has no agent never evaluates them (they were half of every runtime's start).
      const { runAgent } = await import("./agent/agent_runner.ts");
      result = await runAgent({
        agentId: message.agent?.id ?? "",
        actionId: message.agent?.actionId || undefined,
        model: agent.model as never,
        instructions: agent.instructions,
        prompt: message.prompt,
        history,
        outputSchema: agent.outputSchema,
        maxSteps: agent.maxSteps,
        budget: agent.budget,
        workflowBudget: agent.workflowBudget,
        tools: agentTools.specs,
        signal,
        taskExecId: message.task?.execId,
        maxReplyBytes: deps.maxReplyBytes,
        journal: journalOf(bus, message, deps.fences.forTask(taskExecId, signal)),
        callTool: async (toolId, input, ref) => {
          try {
            return await agentTools.callTool(toolId, input, ref);
          } catch (error) {
            // Failed because this runtime is stopping (a sandbox killed, an MCP call aborted): not the tool's
            // result, so the loop must not record it, and the re-run makes the call again (outside review A2).
            if (deps.stopping()) throw new ToolCallGivenUp(`the runtime stopped during ${toolId}'s call`);
            throw error;
          }
        },
        onDelta: liveDeltas(bus, message),
      });
    } finally {
      await agentTools.close();
    }
    if (result.ok && agent.memory) {
      const exchange = [
        { role: "user" as const, content: message.prompt },
        { role: "assistant" as const, content: answerText(result.output, agent.outputSchema) },
      ];
      const ok = result;
      // The answer stands only once it is remembered; the failure keeps the usage it cost. A summary of what
      // left the memory's window spends from the task's budgets and adds its own usage.
      const spend = new TaskSpend(ok.usage, agent, `agent '${message.agent?.id ?? ""}' memory summary`);
      result = await deps.memory.append(agent.memory, taskExecId, exchange, spend, signal).then(
        () => ({ ...ok, usage: spend.usage }),
        (failure) => {
          if (!(failure instanceof AgentFailure)) throw failure;
          return { ok: false, failure, usage: spend.usage };
        },
      );
    }
  } catch (error) {
    // Opening the tools and the memory fail with AgentFailures only; anything else is a bug and must surface.
    if (!(error instanceof AgentFailure)) throw error;
    result = { ok: false, failure: error, usage: { inputTokens: 0, outputTokens: 0, totalTokens: 0 } };
  } finally {
    canceled.done();
    timeLimit.clear();
  }
  // Failed because this runtime is stopping (its tool calls' sandboxes killed): no answer, the task is sent again.
  if (!result.ok && deps.stopping()) throw new LeftUnanswered("the runtime is stopping");
  const usage = result.usage
    ? {
      inputTokens: BigInt(result.usage.inputTokens),
      outputTokens: BigInt(result.usage.outputTokens),
      totalTokens: BigInt(result.usage.totalTokens),
      cost: result.usage.cost,
    }
    : undefined;
  if (result.ok) {
    const success = create(pb.AgentExecutionSuccessSchema, {
      ...ids,
      metadata: bus.metadata(correlationId),
      outputJson: encoder.encode(JSON.stringify(result.output ?? null)),
      usage,
      steps: result.steps,
    });
    bus.publishCore(success);
    return create(pb.AgentExecuteResultSchema, { result: { case: "success", value: success } });
  }
  const failure = result.failure;
  const failed = create(pb.AgentExecutionFailedSchema, {
    ...ids,
    metadata: bus.metadata(correlationId),
    error: toErrorInfo(failure),
    usage,
  });
  bus.publishCore(failed);
  return create(pb.AgentExecuteResultSchema, { result: { case: "failed", value: failed } });
}

/**
 * A signal that aborts when an agent call has run `ms`, with a reason that says so: AbortSignal.timeout's
 * "The operation was aborted due to timeout" left a user of a hanging model wondering who aborted what
 * (outside review rev35). A `TimeoutError`, so the failure stays a retryable `agent_timeout`.
 */
function callTimeLimit(ms: number): { signal: AbortSignal; clear(): void } {
  const controller = new AbortController();
  const timer = setTimeout(() =>
    controller.abort(
      new DOMException(
        `the call's time limit of ${ms} ms ran out (the task's timeout, 5 minutes when it has none)`,
        "TimeoutError",
      ),
    ), ms);
  return { signal: controller.signal, clear: () => clearTimeout(timer) };
}

/** What the model answered, as it is remembered: its text, or the JSON of a structured output. */
function answerText(output: unknown, outputSchema: Record<string, unknown> | undefined): string {
  const text = (output as { text?: unknown } | null)?.text;
  return !outputSchema && typeof text === "string" ? text : JSON.stringify(output);
}

function toolCall(
  message: pb.ToolExecute | pb.AgentExecute,
  tool: ToolWire,
  input: unknown,
  env: Record<string, string>,
  callKey?: string,
): ToolCall {
  const correlationId = message.metadata?.correlationId ?? "";
  const toolExecId = "tool" in message && message.tool ? message.tool.execId : crypto.randomUUID();
  return {
    toolId: tool.id,
    executePath: tool.executePath,
    input,
    permissions: tool.permissions,
    env,
    timeoutMs: tool.timeoutMs,
    inputSchema: tool.inputSchema,
    outputSchema: tool.outputSchema,
    context: {
      workflowId: message.workflow?.id ?? "",
      workflowExecId: message.workflow?.execId ?? "",
      taskId: message.task?.id ?? "",
      taskExecId: callKey ?? message.task?.execId ?? "",
      attempt: message.attempt,
    },
    onLog: ({ level, message: line }) =>
      forwardToolLog(level, line, {
        correlationId,
        workflowId: message.workflow?.id,
        workflowExecId: message.workflow?.execId,
        taskId: message.task?.id,
        taskExecId: message.task?.execId,
        toolId: tool.id,
        toolExecId,
      }),
  };
}

function parseJson(bytes: Uint8Array): unknown {
  return bytes.byteLength ? JSON.parse(decoder.decode(bytes)) : null;
}
