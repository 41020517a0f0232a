/**
 * Forwarding a tool's or agent's console output: the runtime reads lines from a worker process and hands
 * each one here, so it is written locally and published on the tool execution's log subject like any record.
 */
import { getLogger } from "./configure.ts";
import { ID_PROPERTIES, type LogIds } from "./log_address.ts";
import { type LogLevelToken, toLogtapeLevel } from "./levels.ts";

/** The execution a forwarded line belongs to: at least the run and the tool (or agent) execution. */
export type ToolLogIds =
  & LogIds
  & { correlationId: string }
  & (
    | { toolId: string; toolExecId: string }
    | { agentId: string; agentExecId: string }
  );

/**
 * Logs one line of a tool's output under `compozy.tool` (or `compozy.agent`) with its execution ids, on the
 * console and, when logging was configured with a bus, on
 * `compozy.<correlation id>.tool.logs.<tool exec id>.<level>`. Never throws.
 *
 * @example
 * ```ts
 * forwardToolLog("warn", "rate limited, retrying", {
 *   correlationId: execId, workflowExecId: execId, taskExecId, toolId: "weather", toolExecId,
 * }, { stream: "stderr" });
 * ```
 */
export function forwardToolLog(
  level: LogLevelToken,
  message: string,
  ids: ToolLogIds,
  fields: Record<string, unknown> = {},
): void {
  const properties: Record<string, unknown> = { ...fields };
  for (const [field, property] of Object.entries(ID_PROPERTIES) as [keyof LogIds, string][]) {
    if (ids[field]) properties[property] = ids[field];
  }
  // Emitted as a finished record, not a template: braces in tool output must not be read as placeholders.
  getLogger(ids.toolExecId ? ["tool"] : ["agent"]).emit({
    level: toLogtapeLevel(level),
    message: [message],
    rawMessage: message,
    timestamp: Date.now(),
    properties,
  });
}
