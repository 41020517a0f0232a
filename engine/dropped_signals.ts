/**
 * The signal messages an execution dropped (no wait of it took them), so that a copy of one arriving later
 * is dropped too: a signal's fate is fixed at its first arrival (docs/engine.md "Signals"). A copy comes back
 * as a JetStream redelivery (the acknowledgement of the first was lost with its engine), as a signal task's
 * send repeated by its replay past the command stream's duplicate window, or as an API retry with the same
 * `Idempotency-Key` past that window; taken by a wait opened since, it was a signal the first arrival had
 * already decided to drop.
 *
 * Takes need no entry here: each is in the history (`task.waiting_ended`'s `signal_message_id`). Drops are
 * kept out of the history on purpose (signals no wait takes must not grow it: signal_flood_test.ts), in the
 * KV bucket `compozy_dropped_signals`, key `<exec id>.<SHA-256 of the message id, base64url>`: a message id
 * may hold any character and be of any length when the signal is published straight through NATS (the
 * API's are at most ~400 characters: its signal id, exec id and Idempotency-Key are bounded), a key may not,
 * and the key's put is a subject in the publish's control line, which nats-server bounds (4 KiB): a longer
 * one closed the engine's connection (eng45). Its entries expire after the bucket's TTL, 24 h by default, as
 * idempotency keys do: that is the bound on what is remembered, and a copy arriving later than that is
 * treated as a first arrival.
 *
 * @module
 */
import { createHash } from "node:crypto";
import type { KV } from "@nats-io/kv";

/** A dropped signal could not be recorded or looked up (NATS out of reach): the command comes back. */
export class DroppedSignalStoreError extends Error {
  override name = "DroppedSignalStoreError";
  constructor(what: string, execId: string, messageId: string, cause: unknown) {
    super(
      `the drop of signal message ${messageId} of execution ${execId} could not be ${what}: ${
        cause instanceof Error ? cause.message : String(cause)
      }`,
      { cause },
    );
  }
}

/** What the engine asks of the record of dropped signal messages. */
export interface DroppedSignalLog {
  /** Records that no wait of `execId` took the signal message `messageId` at its first arrival. */
  record(execId: string, messageId: string): Promise<void>;
  /** Whether `execId` dropped the signal message `messageId` before (within the bucket's TTL). */
  has(execId: string, messageId: string): Promise<boolean>;
}

/** The record in its KV bucket. */
export class DroppedSignals implements DroppedSignalLog {
  constructor(private readonly kv: KV) {}

  async record(execId: string, messageId: string): Promise<void> {
    try {
      await this.kv.put(keyOf(execId, messageId), new Uint8Array());
    } catch (e) {
      throw new DroppedSignalStoreError("recorded", execId, messageId, e);
    }
  }

  async has(execId: string, messageId: string): Promise<boolean> {
    try {
      const entry = await this.kv.get(keyOf(execId, messageId));
      return entry !== null && entry.operation === "PUT";
    } catch (e) {
      throw new DroppedSignalStoreError("looked up", execId, messageId, e);
    }
  }
}

/** The id's SHA-256, base64url (43 characters a KV key allows, whatever the id's length). */
function keyOf(execId: string, messageId: string): string {
  return `${execId}.${createHash("sha256").update(messageId).digest("base64url")}`;
}
