/**
 * The executions a broadcast sent with an `Idempotency-Key` went to, kept so that a retry with the same key
 * goes to those again and answers as the first did (docs/api.md "Signals"). Looked up again, a retry went to
 * the executions waiting at the retry: one that started waiting since took a signal the first broadcast never
 * sent it, and the answer listed it instead of the first's (eng45, `test/engine/broadcast_ended_target_test.ts`).
 * A target sent the signal again drops it (its message id is the first's), or has ended and takes nothing.
 *
 * Kept in the idempotency bucket (24 h, as the keys of starts), key `broadcast.<SHA-256 of the delivery id,
 * base64url>`: the delivery id holds the client's key (any printable character).
 *
 * @module
 */
import { createHash } from "node:crypto";
import type { KV } from "@nats-io/kv";
import { getLogger } from "../pkg/logger/mod.ts";
import { jsonBytes, parseJsonBytes } from "./json_bytes.ts";

const log = getLogger(["engine", "client"]);

/** An execution a broadcast was sent to: what a signal's subject and address need. */
export interface BroadcastTarget {
  exec_id: string;
  workflow_id: string;
  correlation_id: string;
}

/** The record of a broadcast's targets could not be read or written (NATS out of reach): nothing was sent. */
export class BroadcastRecordError extends Error {
  override name = "BroadcastRecordError";
  constructor(deliveryId: string, cause: unknown) {
    super(
      `the targets of broadcast ${deliveryId} could not be recorded or read: ${
        cause instanceof Error ? cause.message : String(cause)
      }`,
      { cause },
    );
  }
}

/**
 * The targets of the broadcast `deliveryId`: those recorded by its first request, or else `find()`'s, recorded
 * before any is sent. A list larger than one bus message (`maxBytes`) is sent unrecorded, with a warning: its
 * retry looks the targets up again.
 */
export async function broadcastTargets(
  kv: KV,
  deliveryId: string,
  maxBytes: number,
  find: () => Promise<BroadcastTarget[]>,
): Promise<BroadcastTarget[]> {
  const key = `broadcast.${createHash("sha256").update(deliveryId).digest("base64url")}`;
  const recorded = await read(kv, key, deliveryId);
  if (recorded) return recorded;
  const found = await find();
  const value = jsonBytes(found);
  if (value.length > maxBytes) {
    log.warn(
      "broadcast {delivery}: its {count} targets are more than one message holds; a retry looks them up again",
      { delivery: deliveryId, count: found.length },
    );
    return found;
  }
  try {
    await kv.create(key, value);
    return found;
  } catch (e) {
    // A retry sent at the same moment recorded its own list first: both go to that one.
    const raced = await read(kv, key, deliveryId);
    if (!raced) throw new BroadcastRecordError(deliveryId, e);
    return raced;
  }
}

async function read(kv: KV, key: string, deliveryId: string): Promise<BroadcastTarget[] | undefined> {
  try {
    const entry = await kv.get(key);
    return entry?.operation === "PUT" ? parseJsonBytes(entry.value) as BroadcastTarget[] : undefined;
  } catch (e) {
    throw new BroadcastRecordError(deliveryId, e);
  }
}
