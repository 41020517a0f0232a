/**
 * Runs the leaf work of a task in the runtime: a tool call or an agent action, as request/reply commands
 * on core NATS. The engine never imports user code; it sends the resolved definition and waits for the
 * outcome, which the caller then records.
 */
import { create } from "@bufbuild/protobuf";
import type { Bus } from "../../../pkg/nats/mod.ts";
import { MessageTooLargeError, RequestError } from "../../../pkg/nats/mod.ts";
import {
  AgentExecuteResultSchema,
  AgentExecuteSchema,
  type TokenUsage,
  ToolExecuteResultSchema,
  ToolExecuteSchema,
} from "../../../pkg/pb/mod.ts";
import { fromErrorInfo, TaskFailure } from "../../failure.ts";
import { readAgentTurns, type RecordedAgentTurns } from "../../history/agent_turns.ts";
import { uuidv7 } from "../../ids.ts";
import { jsonBytes, parseJsonBytes } from "../../json_bytes.ts";
import { MAX_TIMER_MS } from "../../long_timer.ts";
import { parseDuration, type ToolDefinition } from "../project/mod.ts";
import {
  DEFAULT_RUNTIME_CALL_TIMING,
  requestRuntimeCall,
  type RuntimeCallOptions,
  type RuntimeCallTiming,
} from "./runtime_call.ts";

/** A tool call's limit when its definition sets none (CONFIG.md: default 60s). */
const DEFAULT_TOOL_TIMEOUT_MS = 60_000;

/** How long one call of `tool` may take. */
export function toolTimeoutMs(tool: ToolDefinition): number {
  return tool.timeout ? parseDuration(tool.timeout) : DEFAULT_TOOL_TIMEOUT_MS;
}

/** Time granted beyond the call's limit and its wait for a sandbox for the runtime to kill and answer. */
const RUNTIME_GRACE_MS = 5_000;

/**
 * The engine's allowance for a runtime's wait for a sandbox before a call's limit starts, unless set (EngineOptions
 * `sandboxStartTimeoutMs`, COMPOZY_SANDBOX_START_TIMEOUT_MS). The runtime bounds that wait by the larger of its
 * sandbox start timeout (default 10 s) and the call's limit; the engine cannot know the runtimes' start timeout,
 * so it allows six times the default, for runtimes whose start timeout was raised on a loaded host.
 */
export const SANDBOX_WAIT_ALLOWANCE_MS = 60_000;

/**
 * How long the engine waits for the runtime's answer to a call limited to `timeoutMs`. The runtime times the
 * call's run from when it enters its sandbox (pkg/runtime/tool_runner.ts), after a wait for a sandbox of at most
 * max(its sandbox start timeout, `timeoutMs`), which `sandboxWaitMs` covers (outside review D1: counted in the
 * call's limit, that wait failed short calls that never ran).
 *
 * The deadline is a backstop only: a runtime that died or froze is found by the call's holder questions within
 * seconds (runtime_call.ts), and the call sent again, whatever the deadline. A generous one costs nothing while
 * runtimes live: it bounds only a runtime that holds a call and never answers, and how long a call that no
 * runtime takes (none running) is sent again before it fails `runtime_unavailable`. Capped at setTimeout's bound.
 */
export function runtimeAnswerDeadlineMs(
  timeoutMs: number,
  sandboxWaitMs = SANDBOX_WAIT_ALLOWANCE_MS,
): number {
  return Math.min(timeoutMs + Math.max(timeoutMs, sandboxWaitMs) + RUNTIME_GRACE_MS, MAX_TIMER_MS);
}

export interface LeafCall {
  correlationId: string;
  workflow: { id: string; execId: string };
  task: { id: string; execId: string };
  attempt: number;
  timeoutMs: number;
  /** Aborts when the task gave the call up (a decided race, a time-out): it is not sent again. */
  signal?: AbortSignal;
  /** See RuntimeCallOptions.beforeResend. */
  beforeResend?: () => Promise<void>;
}

export interface AgentRequest {
  agentId: string;
  actionId: string;
  prompt: string;
  /** model, instructions, output schema, max_steps and the tools it may call (see runtime). */
  definition: Record<string, unknown>;
}

export interface LeafResult {
  output: unknown;
  usage?: TokenUsage;
}

const wireDefinitions = new WeakMap<ToolDefinition, Map<number, Uint8Array>>();

/** {@link toolWireDefinition} as JSON bytes, encoded once per tool and time-out (definitions never change). */
function toolWireBytes(tool: ToolDefinition, timeoutMs: number): Uint8Array {
  let byTimeout = wireDefinitions.get(tool);
  if (!byTimeout) wireDefinitions.set(tool, byTimeout = new Map());
  let bytes = byTimeout.get(timeoutMs);
  if (!bytes) byTimeout.set(timeoutMs, bytes = jsonBytes(toolWireDefinition(tool, timeoutMs)));
  return bytes;
}

/** The wire form of a tool definition: what the runtime needs to run it and nothing else. */
export function toolWireDefinition(tool: ToolDefinition, timeoutMs: number): Record<string, unknown> {
  return {
    id: tool.id,
    description: tool.description,
    executePath: tool.executePath,
    inputSchema: tool.input,
    outputSchema: tool.output,
    permissions: tool.permissions ?? {},
    timeoutMs,
  };
}

/** The env values a tool may read: only the names its permissions list. */
export function toolEnv(tool: ToolDefinition, env: Record<string, string>): Record<string, string> {
  const names = tool.permissions?.env ?? [];
  return Object.fromEntries(names.filter((n) => n in env).map((n) => [n, env[n]]));
}

export class LeafExecutor {
  /** `sandboxWaitMs`: the allowance for a runtime's wait for a sandbox (see {@link runtimeAnswerDeadlineMs}). */
  constructor(
    private readonly bus: Bus,
    private readonly timing: RuntimeCallTiming = DEFAULT_RUNTIME_CALL_TIMING,
    private readonly sandboxWaitMs: number = SANDBOX_WAIT_ALLOWANCE_MS,
  ) {}

  async runTool(
    call: LeafCall,
    tool: ToolDefinition,
    input: unknown,
    env: Record<string, string>,
  ): Promise<LeafResult> {
    const message = create(ToolExecuteSchema, {
      metadata: this.bus.metadata(call.correlationId),
      workflow: call.workflow,
      task: call.task,
      tool: { id: tool.id, execId: uuidv7() },
      attempt: call.attempt,
      inputJson: jsonBytes(input),
      definitionJson: toolWireBytes(tool, call.timeoutMs),
      env: toolEnv(tool, env),
      timeoutMs: BigInt(call.timeoutMs),
    });
    const reply = await this.request(
      `the call to tool '${tool.id}' (its input, env and definition)`,
      () =>
        requestRuntimeCall(
          this.bus,
          message,
          message.tool!.execId,
          ToolExecuteResultSchema,
          this.callOptions(call),
        ),
    );
    if (reply.result.case === "success") return { output: parseJsonBytes(reply.result.value.outputJson) };
    throw fromErrorInfo(reply.result.value?.error);
  }

  /**
   * A re-run (attempt 2 or later: a retry, or a crash re-run) sends the turns its loop already recorded, so
   * that the runtime goes on from the first unrecorded one. A first attempt has none and reads nothing. A call
   * sent again because its runtime vanished reads them too: that runtime may have recorded some.
   */
  async runAgent(call: LeafCall, request: AgentRequest, env: Record<string, string>): Promise<LeafResult> {
    const agent = { id: request.agentId, execId: uuidv7(), actionId: request.actionId };
    const build = (recorded: RecordedAgentTurns) =>
      create(AgentExecuteSchema, {
        metadata: this.bus.metadata(call.correlationId),
        workflow: call.workflow,
        task: call.task,
        agent,
        attempt: call.attempt,
        prompt: request.prompt,
        definitionJson: jsonBytes(request.definition),
        env,
        timeoutMs: BigInt(call.timeoutMs),
        recordedReplies: recorded.replies,
        recordedToolCalls: recorded.toolCalls,
      });
    const message = build(call.attempt > 1 ? await this.recordedTurns(call) : { replies: [], toolCalls: [] });
    const what = `the call to agent '${request.agentId}' (its prompt, definition and recorded turns)`;
    const reply = await this.request(
      what,
      () =>
        requestRuntimeCall(this.bus, message, agent.execId, AgentExecuteResultSchema, {
          ...this.callOptions(call),
          resend: async () => build(await this.recordedTurns(call)),
        }),
    );
    if (reply.result.case === "success") {
      return { output: parseJsonBytes(reply.result.value.outputJson), usage: reply.result.value.usage };
    }
    const failure = fromErrorInfo(reply.result.value?.error);
    (failure as { usage?: TokenUsage }).usage = reply.result.value?.usage;
    throw failure;
  }

  private async recordedTurns(call: LeafCall) {
    try {
      return await readAgentTurns(this.bus.js, call.correlationId, call.task.execId);
    } catch (e) {
      throw new TaskFailure({
        message: `the recorded turns of agent task '${call.task.id}' could not be read: ${
          e instanceof Error ? e.message : String(e)
        }`,
        code: "history_unavailable",
        retryable: true,
        cause: e,
      });
    }
  }

  private callOptions(call: LeafCall): RuntimeCallOptions {
    // One attempt may take the whole limit after its wait for a sandbox; "no responders" (no runtime yet) is
    // retried within it.
    return {
      timeoutMs: runtimeAnswerDeadlineMs(call.timeoutMs, this.sandboxWaitMs),
      signal: call.signal,
      beforeResend: call.beforeResend,
      timing: this.timing,
    };
  }

  /** `send`'s reply; `what` names the call in the failure of one too large to send. */
  private async request<T>(what: string, send: () => Promise<T>): Promise<T> {
    try {
      return await send();
    } catch (e) {
      if (e instanceof MessageTooLargeError) throw inputTooLarge(what, e);
      if (e instanceof RequestError) {
        throw new TaskFailure({
          message: `runtime did not answer: ${e.message}`,
          code: "runtime_unavailable",
          retryable: true,
          cause: e,
        });
      }
      throw e;
    }
  }
}

/**
 * A call or start too large for one bus message: the same input fails the same way, so it is not retried (a
 * retryable `runtime_unavailable` "did not answer" sent it again for nothing, outside review D2).
 */
export function inputTooLarge(what: string, e: MessageTooLargeError): TaskFailure {
  return new TaskFailure({
    code: "input_too_large",
    message:
      `${what} is ${e.bytes} bytes encoded, over the bus limit of ${e.maxBytes} bytes (the server's max_payload)`,
    retryable: false,
    details: { bytes: e.bytes, max_bytes: e.maxBytes },
    cause: e,
  });
}
