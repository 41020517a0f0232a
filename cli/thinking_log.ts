/**
 * `compozy dev`'s live log shows an agent thinking without flooding: the live text deltas of each model reply
 * (`agent.delta`, never stored) are coalesced into whole lines, one per reply per second at most, each line
 * the text written since the previous one; whatever is left is written just before the reply's recorded turn
 * line (`↳ agent … turn N: …`). Unlike `compozy run --wait` (one execution, a line left open as text comes),
 * the dev log interleaves every execution, so it only ever writes whole lines.
 *
 * A line longer than {@link MAX_LINE_CHARS} characters of text is cut with `…`: the console and the history
 * hold the whole reply.
 *
 * @module
 */
import { cleanForTerminal } from "../pkg/logger/mod.ts";
import { clock, shortId } from "./event_line.ts";
import type { Paint } from "./terminal.ts";

/** At most one line per reply per this many milliseconds. */
export const THINKING_LINE_INTERVAL_MS = 1_000;

/** Text of one line beyond this is cut. */
export const MAX_LINE_CHARS = 160;

/** The fields of an `AgentDelta` a line needs. */
export interface DeltaView {
  workflow?: { id?: string; execId?: string };
  task?: { id?: string };
  agent?: { execId?: string };
  turn?: number;
  text?: string;
}

interface OpenReply {
  /** `<workflow id> …<exec id>` */
  execution: string;
  task: string;
  text: string;
  /** When the buffered text started (the first delta since the last line). */
  since: number;
}

/** Replies whose text is buffered, by `<agent exec id>:<turn>`; a reply never ended is dropped past this. */
const MAX_OPEN_REPLIES = 1_000;

export class ThinkingLog {
  private readonly open = new Map<string, OpenReply>();

  constructor(private readonly paint: Paint, private readonly intervalMs = THINKING_LINE_INTERVAL_MS) {}

  /** Buffers `delta`'s text, received at `now`. */
  add(delta: DeltaView, now: number): void {
    const key = replyKey(delta.agent?.execId, delta.turn);
    const text = (delta.text ?? "").replace(/\s+/g, " ");
    const reply = this.open.get(key);
    if (reply) {
      if (reply.text === "") reply.since = now;
      reply.text += text;
      return;
    }
    if (this.open.size >= MAX_OPEN_REPLIES) this.open.delete(this.open.keys().next().value!);
    const execution = `${delta.workflow?.id ?? "?"} ${shortId(delta.workflow?.execId)}`;
    this.open.set(key, { execution, task: delta.task?.id ?? "?", text, since: now });
  }

  /** A line for each reply whose buffered text is at least an interval old. */
  due(now: number): string[] {
    const lines: string[] = [];
    for (const reply of this.open.values()) {
      if (reply.text.trim() !== "" && now - reply.since >= this.intervalMs) lines.push(this.take(reply, now));
    }
    return lines;
  }

  /**
   * The rest of turn `turn`'s text of agent call `agentExecId` (every turn's when `turn` is undefined: the
   * call ended), as a line to write before that turn's recorded line; the reply is forgotten.
   */
  end(agentExecId: string | undefined, turn: number | undefined, now: number): string[] {
    const lines: string[] = [];
    const keys = turn === undefined
      ? [...this.open.keys()].filter((key) => key.startsWith(`${agentExecId ?? ""}:`))
      : [replyKey(agentExecId, turn)];
    for (const key of keys) {
      const reply = this.open.get(key);
      if (!reply) continue;
      this.open.delete(key);
      if (reply.text.trim() !== "") lines.push(this.take(reply, now));
    }
    return lines;
  }

  private take(reply: OpenReply, now: number): string {
    const text = reply.text.trim();
    reply.text = "";
    const shown = text.length > MAX_LINE_CHARS ? `${text.slice(0, MAX_LINE_CHARS - 1)}…` : text;
    const paint = this.paint;
    // A model's text (and the ids) may carry escape sequences: shown as text, as every line of the live log.
    return `${paint.dim(`${clock(now)} ${cleanForTerminal(reply.execution)}`)} ${
      cleanForTerminal(reply.task)
    } ${paint.dim("…")} ${cleanForTerminal(shown)}`;
  }
}

function replyKey(agentExecId: string | undefined, turn: number | undefined): string {
  return `${agentExecId ?? ""}:${turn ?? 0}`;
}
