/**
 * The wire side of an agent loop's journal: turns recorded in an `AgentExecute` become the journal's replay,
 * new turns become `AgentModelReplied` / `AgentToolCallEnded` events stored in the EVENTS stream with an
 * awaited JetStream publish (the history of the execution), so a turn is durable before the loop goes on.
 *
 * With a fence (agent_turn_fence.ts), a turn not recorded yet is made by one runner of the task only.
 *
 * Each event's message id is derived from its turn (`<task exec id>:reply:<turn>`,
 * `<task exec id>:tool:<turn>:<index>`): a publish retried through an outage is stored once.
 *
 * @module
 */

import { create } from "@bufbuild/protobuf";
import type { Bus } from "../nats/mod.ts";
import * as pb from "../pb/mod.ts";
import { AgentFailure, errorMessage } from "./agent/agent_failure.ts";
import {
  type JournalSink,
  type ReplyRecord,
  type ToolCallRecord,
  type ToolResultRecord,
  type TurnFence,
  TurnJournal,
} from "./agent/turn_journal.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

type Ids = Pick<pb.AgentExecute, "workflow" | "task" | "agent">;

/**
 * The journal of the loop `message` asks for: its recorded turns, new ones published to `bus`, each new one
 * made by one runner of the task only when `fence` is given.
 */
export function journalOf(bus: Bus, message: pb.AgentExecute, fence?: TurnFence): TurnJournal {
  const correlationId = message.metadata?.correlationId ?? "";
  const taskExecId = message.task?.execId ?? "";
  const ids: Ids = { workflow: message.workflow, task: message.task, agent: message.agent };
  const sink: JournalSink = {
    reply: (record) =>
      store(
        bus,
        create(pb.AgentModelRepliedSchema, {
          ...ids,
          metadata: bus.metadata(correlationId),
          ...replyWire(record),
        }),
        `${taskExecId}:reply:${record.turn}`,
      ),
    toolResult: (call, record) =>
      store(
        bus,
        create(pb.AgentToolCallEndedSchema, {
          ...ids,
          metadata: bus.metadata(correlationId),
          ...toolResultWire(call, record),
        }),
        `${taskExecId}:tool:${record.turn}:${record.index}`,
      ),
  };
  return new TurnJournal(
    {
      replies: message.recordedReplies.map(replyFromWire),
      toolResults: message.recordedToolCalls.map(toolResultFromWire),
    },
    sink,
    fence,
  );
}

async function store(bus: Bus, event: pb.AgentModelReplied | pb.AgentToolCallEnded, msgId: string) {
  try {
    await bus.publish(event, { msgId });
  } catch (error) {
    throw new AgentFailure(
      "agent_turn_unrecorded",
      `turn ${event.turn} of the agent loop could not be stored in the history: ${errorMessage(error)}`,
      { retryable: true, cause: error },
    );
  }
}

function replyWire(record: ReplyRecord) {
  return {
    turn: record.turn,
    repair: record.repair,
    messagesJson: json(record.messages),
    text: record.text,
    toolCalls: record.toolCalls.map(toolCallWire),
    usage: {
      inputTokens: BigInt(record.usage.inputTokens),
      outputTokens: BigInt(record.usage.outputTokens),
      totalTokens: BigInt(record.usage.totalTokens),
    },
  };
}

function toolCallWire(call: ToolCallRecord) {
  return {
    index: call.index,
    callId: call.callId,
    toolId: call.toolId,
    inputJson: json(call.input),
    invalid: call.invalid,
    idempotencyKey: call.key,
    mcpServer: call.mcpServer ?? "",
  };
}

function toolResultWire(call: ToolCallRecord, record: ToolResultRecord) {
  return {
    turn: record.turn,
    call: toolCallWire(call),
    outputJson: record.error === undefined ? json(record.output) : undefined,
    error: record.error === undefined
      ? undefined
      : { message: record.error, code: record.errorCode ?? "tool_failed" },
    durationMs: BigInt(Math.round(record.durationMs)),
  };
}

function replyFromWire(event: pb.AgentModelReplied): ReplyRecord {
  return {
    turn: event.turn,
    repair: event.repair,
    messages: parse(event.messagesJson) as ReplyRecord["messages"],
    text: event.text,
    toolCalls: event.toolCalls.map((call) => ({
      index: call.index,
      callId: call.callId,
      toolId: call.toolId,
      input: parse(call.inputJson),
      invalid: call.invalid,
      key: call.idempotencyKey,
      ...(call.mcpServer ? { mcpServer: call.mcpServer } : {}),
    })),
    usage: {
      inputTokens: Number(event.usage?.inputTokens ?? 0n),
      outputTokens: Number(event.usage?.outputTokens ?? 0n),
      totalTokens: Number(event.usage?.totalTokens ?? 0n),
    },
  };
}

function toolResultFromWire(event: pb.AgentToolCallEnded): ToolResultRecord {
  const base = { turn: event.turn, index: event.call?.index ?? 0, durationMs: Number(event.durationMs) };
  return event.error
    ? { ...base, error: event.error.message, errorCode: event.error.code }
    : { ...base, output: parse(event.outputJson) };
}

function json(value: unknown): Uint8Array {
  return encoder.encode(JSON.stringify(value ?? null));
}

function parse(bytes: Uint8Array): unknown {
  return bytes.byteLength ? JSON.parse(decoder.decode(bytes)) : null;
}
