/**
 * One readable line per workflow, task, tool or agent event, for the live log of `compozy dev` and the
 * progress of `compozy run --wait`. Both see events in their JSON form (the API's EventRecord `data`).
 *
 * An error is printed in full once: the tool's failure, its task's failure and the workflow's failure carry
 * the same message, so after the first line the others name only its code.
 *
 * Every text an event carries (ids, an error's message, a cancel reason, a model's tool names) may come from
 * a tool, a model or an API caller: it goes through the logger's `cleanForTerminal`, so escape sequences in
 * it are shown as text and cannot erase or forge lines, set the title or write the clipboard (red team 7, R4).
 *
 * @module
 */
import { cleanForTerminal as text } from "../pkg/logger/mod.ts";
import type { Paint } from "./terminal.ts";

export interface EventView {
  /** `<component>.<type>`, e.g. `task.success`. */
  type: string;
  time: string;
  data: unknown;
}

interface EventData {
  workflow?: { id?: string; execId?: string };
  task?: { id?: string; execId?: string };
  tool?: { id?: string; execId?: string };
  agent?: { id?: string; execId?: string };
  durationMs?: string | number;
  usage?: { totalTokens?: string | number };
  error?: { message?: string; code?: string };
  attempt?: number;
  nextAttempt?: number;
  delayMs?: string | number;
  signalId?: string;
  /** When a wait or sleep ends on its own (JSON of an int64: a string; absent for 0, never). */
  deadlineUnixMs?: string | number;
  triggerSource?: string;
  reason?: string;
  skipped?: boolean;
  /** An agent loop's turn (agent.model_replied, agent.tool_call_ended). */
  turn?: number;
  toolCalls?: { toolId?: string }[];
  call?: { toolId?: string; mcpServer?: string };
}

/**
 * The event types {@link EventLines} gives a line for, or whose time a later line needs (a start's), by
 * component. The live view subscribes to these alone, so the others (a task's dispatch and a tool's start, two
 * of a tool step's five events) never reach the engine's process (issue 11). event_line_test.ts checks that
 * every other event of the catalogue gives no line.
 */
export const EVENTS_SHOWN = {
  workflow: ["started", "success", "failed", "timed_out", "canceled", "paused", "resumed"],
  task: [
    "started",
    "success",
    "failed",
    "retry_scheduled",
    "waiting_started",
    "waiting_ended",
    "waiting_timed_out",
    "timed_out",
    "canceled",
  ],
  tool: ["success", "failed"],
  agent: ["success", "failed", "model_replied", "tool_call_ended"],
} as const;

/** Remembers start times so that end lines can show durations; bounded, oldest forgotten first. */
export class EventLines {
  private readonly starts = new Map<string, number>();
  private readonly shownErrors = new Set<string>();

  constructor(private readonly paint: Paint, private readonly maxTracked = 10_000) {}

  /** The line for an event, or undefined for events not worth a line (dispatches, attempt starts). */
  format(event: EventView): string | undefined {
    const d = (event.data ?? {}) as EventData;
    const [component, type] = event.type.split(".");
    const time = Date.parse(event.time) || Date.now();
    const body = component === "workflow"
      ? this.workflowLine(type, d, time)
      : component === "task"
      ? this.taskLine(type, d, time)
      : component === "tool" || component === "agent"
      ? this.callLine(component, type, d)
      : undefined;
    if (body === undefined) return undefined;
    const prefix = `${clock(time)} ${text(d.workflow?.id ?? "?")} ${shortId(d.workflow?.execId)}`;
    return `${this.paint.dim(prefix)} ${body}`;
  }

  private workflowLine(type: string, d: EventData, time: number): string | undefined {
    const p = this.paint;
    const id = d.workflow?.execId ?? "";
    switch (type) {
      case "started":
        this.remember(id, time);
        return p.blue(`▶ started${d.triggerSource ? ` (${text(d.triggerSource)})` : ""}`);
      case "success":
        return p.green(`✓ SUCCESS${this.took(id, time)}`);
      case "failed":
        return p.red(`✗ FAILED${this.took(id, time)}: ${this.error(d)}`);
      case "timed_out":
        return p.red(`✗ TIMED_OUT${this.took(id, time)}`);
      case "canceled":
        return p.yellow(`■ CANCELED${this.took(id, time)}${d.reason ? `: ${text(d.reason)}` : ""}`);
      case "paused":
        return p.yellow("⏸ paused");
      case "resumed":
        return p.blue("▶ resumed");
      default:
        return undefined;
    }
  }

  private taskLine(type: string, d: EventData, time: number): string | undefined {
    const p = this.paint;
    const id = d.task?.execId ?? "";
    const task = `  ${text(d.task?.id ?? "?").padEnd(16)}`;
    switch (type) {
      case "started":
        this.remember(id, time);
        return undefined;
      case "success":
        return d.skipped
          ? p.dim(`${task} – skipped`)
          : `${task} ${p.green("✓")}${p.dim(this.took(id, time))}`;
      case "failed":
        return `${task} ${p.red(`✗ ${this.error(d)}`)}${attempt(d.attempt)}`;
      case "retry_scheduled":
        return `${task} ${p.yellow(`↻ retry ${d.nextAttempt ?? "?"} in ${d.delayMs ?? "?"}ms`)}: ${
          this.error(d)
        }`;
      case "waiting_started":
        return `${task} ${p.yellow(`⏸ ${waitingFor(d)}`)}`;
      case "waiting_ended":
        return `${task} ${p.blue("▶ woke up")}`;
      case "waiting_timed_out":
        return `${task} ${p.yellow("⏱ wait timed out")}`;
      case "timed_out":
        return `${task} ${p.red("⏱ timed out")}${attempt(d.attempt)}`;
      case "canceled":
        return `${task} ${p.yellow("■ canceled")}`;
      default:
        return undefined;
    }
  }

  /** A tool or agent call inside a task: its own line, under the task's. */
  private callLine(component: "tool" | "agent", type: string, d: EventData): string | undefined {
    const p = this.paint;
    const call = `    ↳ ${component} ${text((component === "tool" ? d.tool?.id : d.agent?.id) ?? "?")}`;
    const took = d.durationMs !== undefined ? p.dim(` in ${formatMs(Number(d.durationMs))}`) : "";
    switch (type) {
      case "success": {
        const tokens = d.usage?.totalTokens ? p.dim(` (${d.usage.totalTokens} tokens)`) : "";
        return `${call} ${p.green("✓")}${took}${tokens}`;
      }
      case "failed":
        return `${call} ${p.red(`✗ ${this.error(d)}`)}${took}`;
      case "model_replied": {
        const tokens = d.usage?.totalTokens ? p.dim(` (${d.usage.totalTokens} tokens)`) : "";
        const wants = d.toolCalls?.length
          ? `calls ${d.toolCalls.map((c) => text(c.toolId ?? "?")).join(", ")}`
          : "answered";
        return `${call} ${p.dim(`turn ${d.turn ?? "?"}:`)} ${wants}${tokens}`;
      }
      case "tool_call_ended": {
        const outcome = d.error ? p.red(`✗ ${text(d.error.message ?? "failed")}`) : p.green("✓");
        const server = d.call?.mcpServer ? p.dim(` (mcp ${text(d.call.mcpServer)})`) : "";
        return `${call} ${p.dim(`turn ${d.turn ?? "?"}:`)} ${
          text(d.call?.toolId ?? "?")
        }${server} ${outcome}${took}`;
      }
      default:
        return undefined;
    }
  }

  /** True when `message` was already printed in full by a line of this view. */
  hasShown(message: string | undefined): boolean {
    return message !== undefined && this.shownErrors.has(message);
  }

  /** `code: message` the first time a message is shown, then `code (above)`. */
  private error(d: EventData): string {
    const message = d.error?.message;
    if (!message || !this.shownErrors.has(message)) {
      if (message) {
        if (this.shownErrors.size >= this.maxTracked) this.shownErrors.clear();
        this.shownErrors.add(message);
      }
      return describeError(d);
    }
    return `${text(d.error?.code ?? "failed")} (above)`;
  }

  private remember(id: string, time: number): void {
    if (this.starts.size >= this.maxTracked) this.starts.delete(this.starts.keys().next().value!);
    this.starts.set(id, time);
  }

  private took(id: string, time: number): string {
    const start = this.starts.get(id);
    if (start === undefined) return "";
    this.starts.delete(id);
    return ` in ${formatMs(time - start)}`;
  }
}

function describeError(d: EventData): string {
  if (!d.error) return "failed";
  return text(d.error.code ? `${d.error.code}: ${d.error.message ?? ""}` : d.error.message ?? "failed");
}

function attempt(n: number | undefined): string {
  return n && n > 1 ? ` (attempt ${n})` : "";
}

/** UUIDv7 ids start with the time, so their end tells executions apart. */
export function shortId(id: string | undefined): string {
  return id ? `…${id.slice(-8)}` : "?";
}

export function clock(ms: number): string {
  return new Date(ms).toISOString().slice(11, 23);
}

export function formatMs(ms: number): string {
  if (ms < 1_000) return `${Math.max(0, Math.round(ms))}ms`;
  if (ms < 60_000) return `${(ms / 1_000).toFixed(2)}s`;
  return `${Math.floor(ms / 60_000)}m${Math.round((ms % 60_000) / 1_000)}s`;
}

/**
 * What a waiting task waits for: a signal names its id; a sleep has a deadline and no signal; a sub-workflow
 * task waits for its child's end, with neither (engine/domain/task/runners/basic.ts).
 */
function waitingFor(d: EventData): string {
  if (d.signalId) return `waiting for signal '${text(d.signalId)}'`;
  return Number(d.deadlineUnixMs ?? 0) > 0 ? "sleeping" : "waiting for its sub-workflow";
}
