/**
 * The line saying a signal did nothing, placed in the execution's run (its `correlation_id` and
 * `workflow_exec_id`), so that `GET /api/logs?exec_id=` and `compozy executions logs` show it to the user who
 * sent the signal. Logged with only `{execId}` in the message, it went to the engine's own log subject and
 * only the server's log had it: a signal with a typo in its name, or a payload too big, did nothing visible.
 *
 * @module
 */
import { getLogger } from "../../../pkg/logger/mod.ts";

const log = getLogger(["engine", "signals"]);

/** The execution a signal was sent to. */
export interface SignalTarget {
  execId: string;
  correlationId: string;
  workflowId?: string;
}

/**
 * Logs that signal `signalId` sent to `target` was dropped, and why. `warn` for a signal refused as such
 * (its payload), `info` for one no wait took (CONFIG.md: it leaves waits waiting).
 */
export function logDroppedSignal(
  level: "info" | "warn",
  target: SignalTarget,
  signalId: string,
  reason: string,
): void {
  log[level]("signal {signal} to {execId} dropped: {reason}", {
    signal: signalId,
    execId: target.execId,
    reason,
    correlation_id: target.correlationId || target.execId,
    workflow_exec_id: target.execId,
    ...(target.workflowId ? { workflow_id: target.workflowId } : {}),
  });
}

/** The reason logged for a copy of a signal message whose first arrival no wait took (see DroppedSignalLog). */
export function droppedBefore(messageId: string): string {
  return `this very message (${messageId}) arrived before and no wait took it: it is a copy sent again`;
}
