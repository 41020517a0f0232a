/**
 * The journal of an agent loop: what each turn (a model reply, each tool call it asked for) produced, so that
 * a re-run of the task after a crash replays those turns instead of asking the model or running the tools
 * again.
 *
 * Semantics, exactly:
 * - A model reply is recorded (`recordReply` resolves) before any tool it asked for runs; a tool result is
 *   recorded before the next model request. The loop awaits each, so a crash loses at most the turn in flight.
 * - A recorded reply or result is used as it is: the model is not asked and the tool does not run. A tool call
 *   of a recorded reply whose result is not recorded runs again, with the same idempotency key.
 * - Without a sink (`new TurnJournal()`) the journal only replays what it was given and records nothing.
 *
 * @module
 */

import type { ModelMessage } from "ai";
import type { TokenUsage } from "./agent_call.ts";

/** One tool call a model reply asked for. */
export interface ToolCallRecord {
  /** Position in the reply's tool calls, from 0. */
  index: number;
  /** The model's id for the call. */
  callId: string;
  toolId: string;
  input: unknown;
  /** Arguments the SDK could not parse: the call never runs. */
  invalid: boolean;
  /** `<task exec id>:<turn>:<index>` (see {@link toolCallKey}). */
  key: string;
  /** The MCP server whose tool it is; absent for the agent's own tools and unknown tools. */
  mcpServer?: string;
}

/** One model request and its reply. */
export interface ReplyRecord {
  /** 1-based; the structured-output repair request is the turn after the last. */
  turn: number;
  repair: boolean;
  /** The reply's messages as they join the conversation. */
  messages: ModelMessage[];
  text: string;
  toolCalls: ToolCallRecord[];
  usage: TokenUsage;
}

/** How one tool call ended: its output, or the error message the model is shown. */
export interface ToolResultRecord {
  turn: number;
  index: number;
  output?: unknown;
  error?: string;
  /** The failure's code when the tool failed with one (`tool_timeout`, `mcp_timeout`, …). */
  errorCode?: string;
  durationMs: number;
}

/** Where new records go; each promise resolves once the record is stored. */
export interface JournalSink {
  reply(record: ReplyRecord): Promise<void>;
  toolResult(call: ToolCallRecord, record: ToolResultRecord): Promise<void>;
}

/**
 * The idempotency key of one tool call of a loop: stable across re-runs of the task, never shared by two
 * calls.
 *
 * @example
 * ```ts
 * import { toolCallKey } from "./turn_journal.ts";
 * toolCallKey("0190-task", 2, 0); // "0190-task:2:0"
 * ```
 */
export function toolCallKey(taskExecId: string, turn: number, index: number): string {
  return `${taskExecId}:${turn}:${index}`;
}

export class TurnJournal {
  readonly #replies = new Map<number, ReplyRecord>();
  readonly #results = new Map<string, ToolResultRecord>();
  readonly #sink?: JournalSink;

  /** `recorded` holds what earlier runs stored; for a turn or a call recorded twice the first wins. */
  constructor(
    recorded: { replies?: ReplyRecord[]; toolResults?: ToolResultRecord[] } = {},
    sink?: JournalSink,
  ) {
    for (const reply of recorded.replies ?? []) {
      if (!this.#replies.has(reply.turn)) this.#replies.set(reply.turn, reply);
    }
    for (const result of recorded.toolResults ?? []) {
      const id = `${result.turn}:${result.index}`;
      if (!this.#results.has(id)) this.#results.set(id, result);
    }
    this.#sink = sink;
  }

  /** The recorded reply of `turn`, if any. */
  reply(turn: number): ReplyRecord | undefined {
    return this.#replies.get(turn);
  }

  /** The recorded result of call `index` of `turn`, if any. */
  toolResult(turn: number, index: number): ToolResultRecord | undefined {
    return this.#results.get(`${turn}:${index}`);
  }

  async recordReply(record: ReplyRecord): Promise<void> {
    this.#replies.set(record.turn, record);
    await this.#sink?.reply(record);
  }

  async recordToolResult(call: ToolCallRecord, record: ToolResultRecord): Promise<void> {
    this.#results.set(`${record.turn}:${record.index}`, record);
    await this.#sink?.toolResult(call, record);
  }
}
