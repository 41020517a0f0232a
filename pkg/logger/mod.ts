/**
 * Structured logging for every Compozy process, on LogTape: levels trace…fatal, pretty lines on a terminal
 * and JSON lines otherwise, and, given a bus, a `LogEmitted` event per record on
 * `compozy.<correlation id>.<component>.logs.<id>.<level>` (captured by the LOGS stream).
 *
 * Environment: `COMPOZY_LOG_LEVEL` (trace|debug|info|warn|error|fatal), `LOG_FORMAT` (json|pretty).
 *
 * @example
 * ```ts
 * import { configureLogging, getLogger, withContext } from "./pkg/logger/mod.ts";
 *
 * await configureLogging({ component: "engine", bus });
 * const log = getLogger(["engine", "workflow"]);
 * log.info("Engine ready");                                   // compozy.system.engine.logs.<instance>.info
 * await withContext({ correlation_id: execId, workflow_exec_id: execId }, async () => {
 *   log.info("Task {task_id} dispatched", { task_id: "get-weather", task_exec_id: taskExecId });
 *   // → compozy.<execId>.task.logs.<taskExecId>.info
 * });
 * ```
 */
export { withContext } from "@logtape/logtape";
export type { Logger } from "@logtape/logtape";
export { type BusLogSink, type BusLogStats, LOGGER_CATEGORY } from "./bus_sink.ts";
export type { LineWriter } from "./console_sink.ts";
export {
  configureLogging,
  getLogger,
  type LogFormat,
  type LoggingOptions,
  type LoggingSetup,
  resetLogging,
  ROOT_CATEGORY,
} from "./configure.ts";
export { LoggerConfigError } from "./errors.ts";
export { cleanForTerminal } from "./formatters.ts";
export { ID_PROPERTIES, type LogIds } from "./log_address.ts";
export { type LogLevelToken, parseLevel } from "./levels.ts";
export { forwardToolLog, type ToolLogIds } from "./tool_log.ts";
