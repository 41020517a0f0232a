/**
 * The live view of `compozy dev`: one line per workflow, task, tool and agent event, printed as events are
 * recorded, and what agents are writing, coalesced into a line per reply per second (thinking_log.ts).
 * It listens on core NATS (no consumer, nothing to ack), so it never holds messages back; an undecodable
 * message is skipped here (the engine's consumers dead-letter it). It shares the engine's process and
 * connection, so it subscribes only to the event types that give a line (EVENTS_SHOWN): each delivery is a
 * decode on the engine's event loop.
 *
 * @module
 */
import { timestampDate } from "@bufbuild/protobuf/wkt";
import type { Msg, NatsConnection } from "@nats-io/transport-node";
import { decodeBySubject } from "../pkg/nats/codec.ts";
import { subscribeShared } from "../pkg/nats/shared_subscription.ts";
import { type Component, subjectFilter } from "../pkg/nats/subjects.ts";
import type { Metadata } from "../pkg/pb/common_pb.ts";
import { EventLines, EVENTS_SHOWN } from "./event_line.ts";
import { type DeltaView, ThinkingLog } from "./thinking_log.ts";
import type { Paint } from "./terminal.ts";

export interface LiveLog {
  /**
   * Resolves once the line of `execId`'s end (success, failure, time-out, cancel) has been written, or after
   * `timeoutMs`: events travel on core NATS, and a lost one must not hold the caller.
   */
  whenEnded(execId: string, timeoutMs: number): Promise<void>;
  stop(): void;
}

const END_TYPES = new Set(["workflow.success", "workflow.failed", "workflow.timed_out", "workflow.canceled"]);

/** Lines are written in batches: one write per burst instead of one per event keeps a busy engine fast. */
const FLUSH_MS = 50;

export function startLiveLog(nc: NatsConnection, paint: Paint, write: (text: string) => void): LiveLog {
  const lines = new EventLines(paint);
  const thinking = new ThinkingLog(paint);
  let pending: string[] = [];
  /** Executions whose end line is in `pending`, and those a caller waits for. */
  let endedInPending: string[] = [];
  const endWaiters = new Map<string, () => void>();
  /** The latest executions whose end was written, for a caller that asks after the fact. */
  const written = new Set<string>();
  const flush = () => {
    pending.push(...thinking.due(Date.now()));
    if (pending.length > 0) write(pending.join("\n"));
    pending = [];
    for (const execId of endedInPending) {
      written.add(execId);
      if (written.size > 1_000) written.delete(written.values().next().value!);
      endWaiters.get(execId)?.();
    }
    endedInPending = [];
  };
  const flusher = setInterval(flush, FLUSH_MS);
  const onEvent = (err: Error | null, msg: Msg) => {
    if (err) return;
    let message;
    try {
      message = decodeBySubject(msg.subject, msg.data);
    } catch {
      return;
    }
    const tokens = msg.subject.split(".");
    const metadata = (message as { metadata?: Metadata }).metadata;
    const type = `${tokens[2]}.${tokens[5]}`;
    // What an agent wrote for this turn (or, at its end, for any turn) comes before the turn's line.
    if (type === "agent.model_replied" || type === "agent.success" || type === "agent.failed") {
      const { agent, turn } = message as { agent?: { execId?: string }; turn?: number };
      pending.push(
        ...thinking.end(agent?.execId, type === "agent.model_replied" ? turn : undefined, Date.now()),
      );
    }
    const line = lines.format({
      type,
      time: (metadata?.time ? timestampDate(metadata.time) : new Date()).toISOString(),
      // The message's own fields carry the names of its JSON form; no conversion needed for a line.
      data: message,
    });
    if (line) pending.push(line);
    const execId = (message as { workflow?: { execId?: string } }).workflow?.execId;
    if (line && execId && END_TYPES.has(type)) endedInPending.push(execId);
  };
  // One subscription per event type shown: the events that give no line are not sent to this connection.
  // Shared with the API's metrics of the same process (shared_subscription.ts): each event arrives once.
  const subscriptions = Object.entries(EVENTS_SHOWN).flatMap(([component, types]) =>
    types.map((type) =>
      subscribeShared(nc, subjectFilter({ component: component as Component, kind: "evts", type }), onEvent)
    )
  );
  subscriptions.push(
    subscribeShared(nc, subjectFilter({ component: "agent", kind: "live", type: "delta" }), (err, msg) => {
      if (err) return;
      try {
        thinking.add(decodeBySubject(msg.subject, msg.data) as DeltaView, Date.now());
      } catch {
        // Undecodable: a live delta is only a view, skipped like an undecodable event.
      }
    }),
  );
  return {
    whenEnded: (execId, timeoutMs) =>
      new Promise((resolve) => {
        if (written.has(execId)) return resolve();
        const done = () => {
          clearTimeout(timer);
          endWaiters.delete(execId);
          resolve();
        };
        const timer = setTimeout(done, timeoutMs);
        endWaiters.set(execId, done);
      }),
    stop: () => {
      subscriptions.forEach((s) => s.unsubscribe());
      clearInterval(flusher);
      flush();
    },
  };
}
