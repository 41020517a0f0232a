/**
 * `compozy run --wait` shows an agent thinking: the live text deltas of each model reply (`agent.delta`,
 * never stored) are written on one line per reply as they arrive, then the step lines go on below it.
 *
 * @module
 */
import { cleanForTerminal } from "../pkg/logger/mod.ts";
import type { LiveDelta } from "../engine/client.ts";
import { clock, shortId } from "./event_line.ts";
import type { Paint } from "./terminal.ts";

interface DeltaData {
  workflow?: { id?: string; execId?: string };
  task?: { id?: string };
  agent?: { execId?: string };
  turn?: number;
  text?: string;
}

/** Builds the text to write for each delta; a caller writes it without adding a newline. */
export class ThinkingLine {
  /** `<agent exec id>:<turn>` of the reply whose line is open, if one is. */
  private open?: string;

  constructor(private readonly paint: Paint) {}

  /** The text for `delta`: a new line's prefix when it starts another reply, then its text on one line. */
  delta(delta: LiveDelta): string {
    const d = (delta.data ?? {}) as DeltaData;
    const key = `${d.agent?.execId ?? ""}:${d.turn ?? 0}`;
    // A model's text may carry escape sequences: shown as text, as on every other line of the CLI.
    const text = cleanForTerminal((d.text ?? "").replace(/\s+/g, " "));
    if (key === this.open) return text;
    const start = `${this.close()}${
      this.paint.dim(
        `${clock(Date.parse(delta.time) || Date.now())} ${cleanForTerminal(d.workflow?.id ?? "?")} ${
          shortId(d.workflow?.execId)
        }`,
      )
    } ${cleanForTerminal(d.task?.id ?? "?")} ${this.paint.dim("…")} `;
    this.open = key;
    return start + text.trimStart();
  }

  /** Ends the open line, if any: to write before any other line. */
  close(): string {
    if (this.open === undefined) return "";
    this.open = undefined;
    return "\n";
  }
}
