/**
 * What a bench's tap subscribes to instead of `>`: everything but Compozy's core requests of four tokens or
 * fewer (an engine's presence `compozy.engine.presence.<id>`, a runtime call's holder
 * `compozy.runtime.calls.<id>`, health, metrics), whose "no responders" answer is their meaning. A subscriber
 * of `>` is an interest in them that never answers, so each question about a dead engine or runtime timed out
 * instead of meeting "no responders" (docs/operations.md, "Keep wildcard subscribers off `compozy.>`"): with
 * the cluster bench's tap on, the kills row's engine fail-over waited for the lease TTL (13-20 s after the kill,
 * 2026-12-03 19:54 and 20:10 UTC) instead of the presence check. Left in: the JetStream API, acks and
 * advisories, KV writes, every inbox, and every event, command (tool and trigger requests too: a tap makes a
 * request that no runtime or engine takes time out instead of meeting "no responders", so taps run only while
 * the stack is up) and log.
 *
 * @module
 */
import type { Msg, NatsConnection, Subscription } from "@nats-io/transport-node";

export const TAPPED_SUBJECTS: readonly string[] = [
  "$JS.>",
  "$KV.>",
  "_INBOX.>",
  "_INBOX_engine.>",
  "_INBOX_api.>",
  "_INBOX_runtime.>",
  "compozy.dlq.>",
  "compozy.*.*.*.*.*",
  "compozy.*.*.*.*.*.>",
];

/** Subscribes `onMessage` to every tapped subject; a message matches one of them at most (a dlq subject has four tokens). */
export function subscribeTapped(nc: NatsConnection, onMessage: (msg: Msg) => void): Subscription[] {
  return TAPPED_SUBJECTS.map((subject) => nc.subscribe(subject, { callback: (_e, msg) => onMessage(msg) }));
}
