/**
 * The state fold's second look at an outcome that may be a paused engine's late write. The documents fence
 * with what they folded (lease_fence.ts), but engines fold in parallel: an outcome stored just after a
 * take-over may be folded by an engine before any engine folded the take-over. A late write is old when it
 * is stored (its engine was paused for at least a second: a lease is taken from a holder only once it is
 * gone, seen twice 1 s apart, or its TTL ran out), so an outcome folded more than `suspectAfterMs` after it
 * was written is checked against the stream: the execution's take-overs stored before it, read by subject
 * (a few direct reads, no consumer). A fresh outcome, the usual case, costs nothing.
 */
import type { JetStreamManager, MsgRequest } from "@nats-io/jetstream";
import { decodeBySubject, STREAMS } from "../../pkg/nats/mod.ts";
import type { StoredEvent } from "../history/read_history.ts";
import { leaseRevisionOf } from "../history/lease_fence.ts";

/** The events that are outcomes (awaited writes): what the state shows as a result. */
const OUTCOMES = new Set([
  "task.success",
  "task.failed",
  "task.retry_scheduled",
  "task.waiting_started",
  "task.waiting_ended",
  "task.waiting_timed_out",
  "workflow.success",
  "workflow.failed",
  "workflow.canceled",
  "workflow.timed_out",
  "workflow.paused",
  "workflow.resumed",
]);

export class TakeOverCheck {
  constructor(private readonly jsm: JetStreamManager, private readonly suspectAfterMs = 1_000) {}

  /** True when `event` is an outcome stored after a take-over of a higher lease revision: not history. */
  async fences(event: StoredEvent): Promise<boolean> {
    const revision = leaseRevisionOf(event);
    if (revision === 0 || !OUTCOMES.has(event.type)) return false;
    if (Date.now() - event.time.getTime() < this.suspectAfterMs) return false;
    const m = event.message as { metadata?: { correlationId?: string }; workflow?: { execId?: string } };
    const subject = `compozy.${m.metadata?.correlationId}.workflow.evts.${m.workflow?.execId}.taken_over`;
    for (let from = 1; from < event.seq;) {
      // STREAM.MSG.GET answers `next_by_subj` on nats-server 2.9 (the client types it for direct gets only).
      const request = { seq: from, next_by_subj: subject } as unknown as MsgRequest;
      const takeOver = await this.jsm.streams.getMessage(STREAMS.events, request);
      if (!takeOver || takeOver.seq >= event.seq) return false;
      if (leaseRevisionOf({ message: decodeBySubject(takeOver.subject, takeOver.data) }) > revision) {
        return true;
      }
      from = takeOver.seq + 1;
    }
    return false;
  }
}
