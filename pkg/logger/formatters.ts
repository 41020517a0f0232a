/**
 * The two console formats: JSON lines for machines (one object per line, properties at the top level) and a
 * short pretty line for people. Both render the same message text, which is also what `LogEmitted` carries.
 */
import { type LogRecord, sanitizeControlSequences } from "@logtape/logtape";
import { toLevelToken } from "./levels.ts";
import { entriesOf, stringifySafely, toJsonValue } from "./json_value.ts";

/** The fields every JSON line starts with; a property with one of these names is written as `prop.<name>`. */
const RESERVED = new Set(["time", "level", "category", "message"]);

/** The message with its placeholders filled in: strings as they are, other values as JSON. */
export function renderMessage(record: LogRecord): string {
  let text = "";
  record.message.forEach((part, i) => {
    // Even indexes are the template's literal text, odd ones the interpolated values.
    text += i % 2 === 0 ? String(part) : renderValue(part);
  });
  return text;
}

/**
 * One JSON object per line.
 *
 * @example
 * ```ts
 * formatJsonLine(record);
 * // {"time":"2025-01-01T10:00:00.000Z","level":"info","category":"compozy.engine","message":"started","port":4222}
 * ```
 */
export function formatJsonLine(record: LogRecord): string {
  const line: Record<string, unknown> = {
    time: new Date(record.timestamp).toISOString(),
    level: toLevelToken(record.level),
    category: record.category.join("."),
    message: renderMessage(record),
  };
  for (const [key, value] of entriesOf(record.properties)) {
    line[RESERVED.has(key) ? `prop.${key}` : key] = value;
  }
  return escapeC1(stringifySafely(line)) + "\n";
}

const C1_AND_LINE_SEPARATORS = /[\u0080-\u009f\u2028\u2029]/g;

/**
 * `JSON.stringify` escapes C0 controls but writes C1 controls (U+0080–U+009F) as they are, and a terminal acts
 * on them: a tool's console line `\u009b2J` cleared the operator's screen and `\u009d0;…\u009c` set its title
 * under `LOG_FORMAT=json` (red team 8 S14). Written as `\u00XX` (and U+2028/U+2029 as `\u2028`/`\u2029`), the
 * line parses to the same value.
 */
function escapeC1(json: string): string {
  return json.replace(C1_AND_LINE_SEPARATORS, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
}

const LABELS = {
  trace: "TRACE",
  debug: "DEBUG",
  info: "INFO ",
  warn: "WARN ",
  error: "ERROR",
  fatal: "FATAL",
} as const;

/** ANSI colours by level; used only when the output is a terminal. */
const COLOURS = {
  trace: "\x1b[90m",
  debug: "\x1b[36m",
  info: "\x1b[32m",
  warn: "\x1b[33m",
  error: "\x1b[31m",
  fatal: "\x1b[1;35m",
} as const;
const RESET = "\x1b[0m";
const DIM = "\x1b[2m";

export interface PrettyOptions {
  /** Colour the level label (and dim the category); only for a terminal. */
  color: boolean;
}

/**
 * `HH:MM:SS.mmm LEVEL category message key=value …`, then the stack of any logged error, indented.
 *
 * @example
 * ```ts
 * formatPrettyLine(record, { color: false });
 * // 10:00:00.000 INFO  compozy.engine started port=4222
 * ```
 */
export function formatPrettyLine(record: LogRecord, options: PrettyOptions): string {
  const token = toLevelToken(record.level);
  const level = options.color ? `${COLOURS[token]}${LABELS[token]}${RESET}` : LABELS[token];
  const category = record.category.join(".");
  let line = `${shortTime(record.timestamp)} ${level} ${options.color ? DIM + category + RESET : category} ` +
    cleanForTerminal(renderMessage(record));
  const stacks: string[] = [];
  const inMessage = placeholders(record);
  const properties = entriesOf(record.properties);
  const execId = properties.find(([key]) => key === "workflow_exec_id")?.[1];
  for (const [key, value] of properties) {
    if (value instanceof Error && value.stack) stacks.push(stackFrames(value.stack));
    // Said once: a value the message already shows, or the correlation id of a root execution (its own id).
    if (inMessage.has(key) || (key === "correlation_id" && value === execId)) continue;
    const shown = typeof value === "string" && SHORTENED_IDS.test(key) && UUID.test(value)
      ? `…${value.slice(-8)}`
      : renderPropValue(value);
    line += ` ${key}=${cleanForTerminal(shown)}`;
  }
  return [line, ...stacks].join("\n") + "\n";
}

/** Ids shown as their last 8 characters on a pretty line, as the live view shows them (UUIDv7 end differs). */
const SHORTENED_IDS = /(^|_)(exec_id|correlation_id)$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Names of the `{placeholders}` of a templated message: their values are in the text already. */
function placeholders(record: LogRecord): Set<string> {
  if (typeof record.rawMessage !== "string") return new Set();
  return new Set([...record.rawMessage.matchAll(/\{([A-Za-z_$][\w$]*)\}/g)].map((match) => match[1]));
}

function shortTime(timestamp: number): string {
  const d = new Date(timestamp);
  const pad = (n: number, w = 2) => String(n).padStart(w, "0");
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`;
}

function renderValue(value: unknown): string {
  if (typeof value === "string") return value;
  if (value instanceof Error) return value.message;
  return stringifySafely(value);
}

/** Bare when unambiguous (`port=4222`, `id=abc`), JSON-quoted when it has spaces, quotes or `=`. */
function renderPropValue(value: unknown): string {
  if (value instanceof Error) return JSON.stringify(`${value.name}: ${value.message}`);
  if (typeof value === "string") return /^[^\s"=]+$/.test(value) ? value : JSON.stringify(value);
  const json = toJsonValue(value);
  return typeof json === "string" ? JSON.stringify(json) : stringifySafely(json);
}

/** The frames of a stack, without its first line (the message already shown), indented under the record. */
function stackFrames(stack: string): string {
  return stack.split("\n").slice(1).map((l) => `    ${l.trim()}`).join("\n");
}

/**
 * Messages may carry a tool's raw console output: neutralise escape sequences that could move the cursor or
 * forge lines on a terminal. ESC, CR, LF, BEL and every other C0/C1 control (colours too) become visible text
 * (`\x1b`, `\r`, `\n`, `\x07`, `\x9b`), so the text stays on one line and changes nothing on the screen.
 * The one sanitizer for text a tool, a model or an API caller controls on its way to a terminal: the pretty
 * log lines here and every human view of the CLI (live log, `run --wait`, `executions show|logs`, errors).
 */
export function cleanForTerminal(text: string): string {
  return sanitizeControlSequences(text, { sgr: "escape", newlines: "escape" });
}
