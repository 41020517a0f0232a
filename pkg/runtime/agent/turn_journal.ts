/**
 * The journal of an agent loop: what each turn (a model reply, each tool call it asked for) produced, so that
 * a re-run of the task after a crash replays those turns instead of asking the model or running the tools
 * again.
 *
 * Semantics, exactly:
 * - A model reply is recorded (`reply` resolves) before any tool it asked for runs; a tool result is
 *   recorded before the next model request. The loop awaits each, so a crash loses at most the turn in flight.
 * - A recorded reply or result is used as it is: the model is not asked and the tool does not run. A tool call
 *   of a recorded reply whose result is not recorded runs again, with the same idempotency key.
 * - With a fence, a turn or tool call the journal was not given is made by at most one of the runners of the
 *   same task at a time (two runtimes, or a re-sent command, running one task at once): the first to claim it
 *   asks the model or runs the tool, the others wait for what it made and replay that (see {@link TurnFence}).
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
 * Decides which runner of a task makes each step of its loop, so that two runners of one task never both ask
 * the model for a turn or both run a tool call (pkg/runtime/agent_turn_fence.ts keeps it in JetStream KV).
 */
export interface TurnFence {
  /**
   * What step `step` (`reply.<turn>`, `tool.<turn>.<index>`) holds: made by `make` when this runner is the
   * first to claim it, or what the runner that claimed it made (waited for while that runner is alive).
   * Resolves only once the value is kept by the fence.
   */
  once<T>(step: string, make: () => Promise<T>): Promise<T>;
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
  readonly #fence?: TurnFence;

  /** `recorded` holds what earlier runs stored; for a turn or a call recorded twice the first wins. */
  constructor(
    recorded: { replies?: ReplyRecord[]; toolResults?: ToolResultRecord[] } = {},
    sink?: JournalSink,
    fence?: TurnFence,
  ) {
    for (const reply of recorded.replies ?? []) {
      if (!this.#replies.has(reply.turn)) this.#replies.set(reply.turn, reply);
    }
    for (const result of recorded.toolResults ?? []) {
      const id = `${result.turn}:${result.index}`;
      if (!this.#results.has(id)) this.#results.set(id, result);
    }
    this.#sink = sink;
    this.#fence = fence;
  }

  /**
   * The reply of `turn`: the recorded one, or the one `ask` gets (or another runner of the task got, with a
   * fence), recorded before it is returned.
   */
  async reply(turn: number, ask: () => Promise<ReplyRecord>): Promise<ReplyRecord> {
    const known = this.#replies.get(turn);
    if (known) return known;
    const record = this.#fence ? await this.#fence.once(`reply.${turn}`, ask) : await ask();
    this.#replies.set(turn, record);
    // A reply another runner made is recorded again under the same message id: a no-op when that runner
    // recorded it already, and the record when it died before it could.
    await this.#sink?.reply(record);
    return record;
  }

  /** The result of `call` of `turn`: the recorded one, or the one `run` makes, recorded before it is returned. */
  async toolResult(
    turn: number,
    call: ToolCallRecord,
    run: () => Promise<ToolResultRecord>,
  ): Promise<ToolResultRecord> {
    const id = `${turn}:${call.index}`;
    const known = this.#results.get(id);
    if (known) return known;
    const record = this.#fence ? await this.#fence.once(`tool.${turn}.${call.index}`, run) : await run();
    this.#results.set(id, record);
    await this.#sink?.toolResult(call, record);
    return record;
  }
}
