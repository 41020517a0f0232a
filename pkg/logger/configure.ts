/**
 * Process-wide logging set-up: levels, the console format, and the optional NATS sink. Every Compozy process
 * calls {@link configureLogging} once at start; modules only call {@link getLogger}.
 */
import { AsyncLocalStorage } from "node:async_hooks";
import {
  configure,
  getLogger as getLogtapeLogger,
  type Logger,
  type LogRecord,
  reset,
  type Sink,
} from "@logtape/logtape";
import type { Bus } from "../nats/bus.ts";
import { assertToken, LOG_COMPONENTS, type LogComponent } from "../nats/subjects.ts";
import { type BusLogSink, createBusLogSink } from "./bus_sink.ts";
import { createConsoleSink, type LineWriter, writeToStderr } from "./console_sink.ts";
import { LoggerConfigError } from "./errors.ts";
import { formatJsonLine, formatPrettyLine } from "./formatters.ts";
import { type LogLevelToken, parseLevel, toLogtapeLevel } from "./levels.ts";

export type LogFormat = "pretty" | "json" | "auto";
const FORMATS: readonly LogFormat[] = ["pretty", "json", "auto"];

/** The root of every Compozy logger category. */
export const ROOT_CATEGORY = "compozy";

export interface LoggingOptions {
  /** Lowest level written; default `COMPOZY_LOG_LEVEL`, else `info`. */
  level?: LogLevelToken;
  /** Default `LOG_FORMAT`, else `auto`: pretty when stderr is a terminal, JSON lines otherwise. */
  format?: LogFormat;
  /** When given, every record is also published as a `LogEmitted` event on the log subjects. */
  bus?: Bus;
  /** The process's role: the component of its own log subjects (`compozy.system.<component>.logs.…`). */
  component: LogComponent;
  /** This process's id on its log subjects; default a random UUID. */
  instanceId?: string;
  /** Where console lines go; default stderr. Lines written elsewhere are never coloured. */
  write?: LineWriter;
}

/** What {@link configureLogging} settled on. */
export interface LoggingSetup {
  level: LogLevelToken;
  format: "pretty" | "json";
  instanceId: string;
  /** The NATS sink, when a bus was given; its `stats()` count published and dropped events. */
  busSink?: BusLogSink;
}

/**
 * Configures logging for the whole process, replacing any earlier configuration. Throws LoggerConfigError
 * for a level, format, component or instance id it cannot use; after that, logging never throws.
 *
 * @example
 * ```ts
 * await configureLogging({ component: "engine", bus });
 * getLogger(["engine"]).info("Workflow {workflow_id} started", { workflow_id: "weather", correlation_id: execId });
 * ```
 */
export async function configureLogging(options: LoggingOptions): Promise<LoggingSetup> {
  const setup = resolveSetup(options);
  const useStderr = options.write === undefined;
  const write = options.write ?? writeToStderr;
  const color = setup.format === "pretty" && useStderr && Deno.stderr.isTerminal();
  const format = setup.format === "json"
    ? formatJsonLine
    : (record: LogRecord) => formatPrettyLine(record, { color });
  const sinks: Record<string, Sink> = { console: createConsoleSink(format, write) };
  if (options.bus) {
    setup.busSink = createBusLogSink({
      bus: options.bus,
      component: options.component,
      instanceId: setup.instanceId,
    });
    sinks.bus = setup.busSink;
  }
  await configure({
    reset: true,
    sinks,
    // Lets the engine set the ids of a run once (`withContext`) instead of on every call.
    contextLocalStorage: new AsyncLocalStorage(),
    loggers: [
      { category: [ROOT_CATEGORY], sinks: Object.keys(sinks), lowestLevel: toLogtapeLevel(setup.level) },
      // LogTape's own diagnostics (a sink that threw): console only, and only when something is wrong.
      { category: ["logtape", "meta"], sinks: ["console"], lowestLevel: "warning" },
    ],
  });
  return setup;
}

/** Removes the configuration and disposes its sinks (the NATS sink stops following the connection). */
export async function resetLogging(): Promise<void> {
  await reset();
}

/**
 * A logger under the `compozy` category; `["engine"]` and `["compozy", "engine"]` name the same logger.
 *
 * @example
 * ```ts
 * const log = getLogger(["runtime", "pool"]);
 * log.warn("Worker {pid} killed after {ms} ms", { pid, ms });
 * ```
 */
export function getLogger(category: readonly string[]): Logger {
  const rest = category[0] === ROOT_CATEGORY ? category.slice(1) : category;
  return getLogtapeLogger([ROOT_CATEGORY, ...rest]);
}

function resolveSetup(options: LoggingOptions): LoggingSetup {
  const envLevel = Deno.env.get("COMPOZY_LOG_LEVEL");
  const level = options.level !== undefined
    ? parseLevel(options.level, "level")
    : envLevel
    ? parseLevel(envLevel, "COMPOZY_LOG_LEVEL")
    : "info";
  const envFormat = Deno.env.get("LOG_FORMAT");
  const format = options.format !== undefined
    ? parseFormat(options.format, "format")
    : envFormat
    ? parseFormat(envFormat, "LOG_FORMAT")
    : "auto";
  if (!(LOG_COMPONENTS as readonly string[]).includes(options.component)) {
    throw new LoggerConfigError(
      `Cannot configure logging as 'component' must be one of ${LOG_COMPONENTS.join(", ")}: ` +
        `current value is '${options.component}'`,
      "component",
      options.component,
    );
  }
  const instanceId = options.instanceId ?? crypto.randomUUID();
  try {
    assertToken("instance id", instanceId);
  } catch (e) {
    throw new LoggerConfigError(
      `Cannot configure logging: ${(e as Error).message}`,
      "instanceId",
      instanceId,
    );
  }
  const resolved = format === "auto" ? (Deno.stderr.isTerminal() ? "pretty" : "json") : format;
  return { level, format: resolved, instanceId };
}

function parseFormat(value: string, option: string): LogFormat {
  const lowered = value.trim().toLowerCase();
  if ((FORMATS as readonly string[]).includes(lowered)) return lowered as LogFormat;
  throw new LoggerConfigError(
    `Cannot configure logging as '${option}' must be one of ${
      FORMATS.join(", ")
    }: current value is '${value}'`,
    option,
    value,
  );
}
