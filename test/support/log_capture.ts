/**
 * The engine's log, kept in memory for a test that asserts what it says: the logging is configured to write
 * JSON lines (info and above) into an array for the time of `fn`, then reset.
 */
import { configureLogging, resetLogging } from "../../pkg/logger/mod.ts";

/** One JSON log line, as the logger writes it. */
export interface LoggedRecord {
  level: string;
  message: string;
}

export interface CapturedLog {
  /** Every line written so far, one a line (for an assertion's message). */
  text(): string;
  /** The records written so far whose message contains every one of `parts`. */
  records(...parts: string[]): LoggedRecord[];
}

/** Runs `fn` while the log is captured (see the module's comment); the logging is reset afterwards. */
export async function withCapturedLog<T>(fn: (log: CapturedLog) => Promise<T>): Promise<T> {
  const lines: string[] = [];
  await configureLogging({ component: "engine", format: "json", level: "info", write: (l) => lines.push(l) });
  const records = (...parts: string[]) =>
    lines.map((l) => JSON.parse(l) as LoggedRecord).filter((r) => parts.every((p) => r.message.includes(p)));
  try {
    return await fn({ text: () => lines.join("\n"), records });
  } finally {
    await resetLogging();
  }
}
