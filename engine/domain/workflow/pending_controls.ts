/**
 * The controls (cancel, pause, resume) accepted for an execution and not handled yet: the API stored them in
 * WORKFLOW_CMDS, a work queue, where each stays until an engine acknowledges it. An engine that died after
 * taking one leaves it held until the ack wait is over (30 s by default), while the execution's other
 * commands (a timer that came due meanwhile) reach the next engine at once. Without this look-up at
 * activation, that timer ran the execution on: it ended SUCCESS after an accepted cancel (outside review F8),
 * it ran on for the ack wait and read RUNNING after an accepted pause (F9). Accepted first, they come first.
 */
import type { JetStreamClient } from "@nats-io/jetstream";
import { create } from "@bufbuild/protobuf";
import {
  type Bus,
  decodeBySubject,
  lastMessageOf,
  type StreamMessage,
  STREAMS,
  subjectOf,
} from "../../../pkg/nats/mod.ts";
import { WorkflowCancelSchema, WorkflowPauseSchema, WorkflowResumeSchema } from "../../../pkg/pb/mod.ts";
import type * as pb from "../../../pkg/pb/mod.ts";
import { getLogger } from "../../../pkg/logger/mod.ts";

const log = getLogger(["engine", "executor"]);

export interface PendingControls {
  /** The reason of a pending cancel: the execution is canceled before anything of it runs again. */
  cancel?: string;
  /** The last pending pause or resume (the later one when both are): whether it pauses. */
  paused?: boolean;
  /**
   * That pause and resume in the stream: removed once applied, so they do not come back later; a delivery of
   * one of them is known by its subject and sequence (see isApplied).
   */
  applied: Array<{ subject: string; seq: number }>;
}

/** Whether the message delivered as `subject` at `seq` is one of the applied pause and resume. */
export function isApplied(controls: PendingControls | undefined, subject: string, seq: number): boolean {
  return controls?.applied.some((m) => m.subject === subject && m.seq === seq) ?? false;
}

/** What waits for `execId` in WORKFLOW_CMDS (three look-ups by subject, in parallel). */
export async function pendingControls(
  bus: Bus,
  js: JetStreamClient,
  correlationId: string,
  execId: string,
): Promise<PendingControls> {
  const last = (schema: ControlSchema) => lastControl(bus, js, correlationId, execId, schema);
  const [cancel, pause, resume] = await Promise.all([
    last(WorkflowCancelSchema),
    last(WorkflowPauseSchema),
    last(WorkflowResumeSchema),
  ]);
  const controls: PendingControls = { applied: [], cancel: cancelReason(cancel, execId) };
  const latest = [pause, resume].filter((m) => m !== undefined && readable(m, execId)) as StreamMessage[];
  if (latest.length > 0) {
    const last = latest.reduce((a, b) => a.seq > b.seq ? a : b);
    controls.paused = last === pause;
    controls.applied = latest.map((m) => ({ subject: m.subject, seq: m.seq }));
  }
  return controls;
}

/**
 * The reason of a cancel accepted for a sub-workflow's parent, or for an ancestor further up, and not handled
 * yet, as the parent's cancel of its children words it. The parent's end cancels its children, so a child
 * activated meanwhile (a timer that came due while no engine ran, taken before the parent's cancel, which the
 * dead engine held for the ack wait) is canceled first, rather than running its next steps after the user's
 * cancel (model seeds 120095, 120099). Every level: a root's pending cancel reaches its grandchild only when
 * the root and then the parent handle it, and a grandchild's timer due at a restart ran its next step first
 * (outside review breaker3). Each ancestor is found by its `workflow.started`, which names its parent.
 */
export async function parentCancelReason(
  bus: Bus,
  js: JetStreamClient,
  correlationId: string,
  parentExecId: string,
): Promise<string | undefined> {
  const seen = new Set<string>();
  for (let ancestor: string | undefined = parentExecId; ancestor && !seen.has(ancestor);) {
    seen.add(ancestor);
    const cancel = await lastControl(bus, js, correlationId, ancestor, WorkflowCancelSchema);
    const reason = cancelReason(cancel, ancestor);
    if (reason !== undefined) {
      const via = ancestor === parentExecId ? "" : ` (its ancestor ${ancestor})`;
      return `parent ${parentExecId}: canceled${via}: ${reason}`;
    }
    ancestor = await parentOf(js, correlationId, ancestor);
  }
  return undefined;
}

/** The parent an execution's `workflow.started` names (a root names none; an unreadable one counts as none). */
async function parentOf(
  js: JetStreamClient,
  correlationId: string,
  execId: string,
): Promise<string | undefined> {
  // A sub-workflow's subjects carry its root's correlation id, as its descendants' do.
  const subject = `compozy.${correlationId}.workflow.evts.${execId}.started`;
  const started = await lastMessageOf(js, STREAMS.events, subject);
  if (!started) return undefined;
  try {
    return (decodeBySubject(started.subject, started.data) as pb.WorkflowExecutionStarted).parent?.workflow
      ?.execId ||
      undefined;
  } catch (e) {
    log.warn("workflow.started of {execId} unreadable; its ancestors' cancels are not looked up: {error}", {
      execId,
      error: e instanceof Error ? e.message : String(e),
    });
    return undefined;
  }
}

type ControlSchema = typeof WorkflowCancelSchema | typeof WorkflowPauseSchema | typeof WorkflowResumeSchema;

/** The last control of `schema`'s kind stored for `execId` in WORKFLOW_CMDS and not acknowledged yet. */
function lastControl(
  bus: Bus,
  js: JetStreamClient,
  correlationId: string,
  execId: string,
  schema: ControlSchema,
): Promise<StreamMessage | undefined> {
  const address = { metadata: bus.metadata(correlationId), workflow: { execId } };
  return lastMessageOf(js, STREAMS.workflowCommands, subjectOf(create(schema, address)));
}

function cancelReason(stored: StreamMessage | undefined, execId: string): string | undefined {
  const cancel = stored && readable(stored, execId);
  return cancel ? (cancel as pb.WorkflowCancel).reason || "canceled" : undefined;
}

/** The decoded command, or undefined when it cannot be read (its consumer dead-letters it when met). */
function readable(stored: StreamMessage, execId: string): unknown {
  try {
    return decodeBySubject(stored.subject, stored.data);
  } catch (e) {
    log.warn("unreadable command {subject} of {execId} left to the command consumer: {error}", {
      subject: stored.subject,
      execId,
      error: String(e),
    });
    return undefined;
  }
}

/**
 * Removes applied pause and resume commands from WORKFLOW_CMDS, each by its sequence (never a filtered purge,
 * which makes nats-server 2.9 forget what its consumer holds back: finding G5). One left there would come back
 * after the ack wait and undo a later control (a stale pause after the user's resume). One gone already is
 * what was wanted: its own handler, given the driver meanwhile, acknowledged it (finding G9: that was taken
 * for a failure, the driver given up after it had recorded the signal that activated it, and that signal,
 * redelivered, was moot, so nothing drove the execution again).
 */
export async function removeApplied(js: JetStreamClient, seqs: number[]): Promise<void> {
  if (seqs.length === 0) return;
  const jsm = await js.jetstreamManager(false);
  for (const seq of seqs) {
    await jsm.streams.deleteMessage(STREAMS.workflowCommands, seq, false).catch((e) => {
      if (!isGone(e)) throw e;
    });
  }
}

/** nats-server's answer to the deletion of a sequence the stream no longer holds. */
function isGone(e: unknown): boolean {
  return /sequence \d+ not found|no message found/i.test(e instanceof Error ? e.message : String(e));
}
