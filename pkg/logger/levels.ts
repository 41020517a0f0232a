/**
 * The one place that maps log levels between their three spellings: Compozy's (`warn`, used in subjects and
 * configuration), LogTape's (`warning`) and the Protobuf `LogLevel` enum carried by `LogEmitted`.
 */
import type { LogLevel as LogtapeLevel } from "@logtape/logtape";
import { LOG_LEVELS, type LogLevelToken } from "../nats/subjects.ts";
import { LogLevel } from "../pb/log_pb.ts";
import { LoggerConfigError } from "./errors.ts";

export type { LogLevelToken };

const TO_LOGTAPE: Record<LogLevelToken, LogtapeLevel> = {
  trace: "trace",
  debug: "debug",
  info: "info",
  warn: "warning",
  error: "error",
  fatal: "fatal",
};

const TO_TOKEN: Record<LogtapeLevel, LogLevelToken> = {
  trace: "trace",
  debug: "debug",
  info: "info",
  warning: "warn",
  error: "error",
  fatal: "fatal",
};

const TO_PROTO: Record<LogLevelToken, LogLevel> = {
  trace: LogLevel.TRACE,
  debug: LogLevel.DEBUG,
  info: LogLevel.INFO,
  warn: LogLevel.WARN,
  error: LogLevel.ERROR,
  fatal: LogLevel.FATAL,
};

export function toLogtapeLevel(level: LogLevelToken): LogtapeLevel {
  return TO_LOGTAPE[level];
}

export function toLevelToken(level: LogtapeLevel): LogLevelToken {
  return TO_TOKEN[level];
}

export function toProtoLevel(level: LogLevelToken): LogLevel {
  return TO_PROTO[level];
}

/**
 * Reads a level as a user writes it: case-insensitive, `warning` accepted for `warn`.
 *
 * @example
 * ```ts
 * parseLevel("WARNING", "COMPOZY_LOG_LEVEL"); // "warn"
 * parseLevel("loud", "level"); // throws LoggerConfigError
 * ```
 */
export function parseLevel(value: string, option: string): LogLevelToken {
  const lowered = value.trim().toLowerCase();
  const token = lowered === "warning" ? "warn" : lowered;
  if ((LOG_LEVELS as readonly string[]).includes(token)) return token as LogLevelToken;
  throw new LoggerConfigError(
    `Cannot configure logging as '${option}' must be one of ${
      LOG_LEVELS.join(", ")
    }: current value is '${value}'`,
    option,
    value,
  );
}
