/**
 * Where schedules remember their last tick: one entry per schedule in the `compozy_schedules` KV bucket,
 * written with compare-and-set so that of several processes reaching the same tick exactly one claims it.
 *
 * @module
 */
import type { KV } from "@nats-io/kv";

/**
 * `claimed`: a process took the tick and is triggering it; `sent`: the trigger was accepted (or refused for
 * good); `baseline`: no tick was fired, the schedule only started counting from `tick`.
 */
export type TickState = "claimed" | "sent" | "baseline";

export interface ScheduleRecord {
  /** ISO time of the tick. */
  tick: string;
  state: TickState;
  /** The cron the tick belongs to: a changed cron starts a new count instead of catching up. */
  cron: string;
  /** The instance that wrote the record. */
  by: string;
  /** When a claim was written (ms since the epoch): a claim younger than the grace is still in progress. */
  at?: number;
  /** Why the trigger was refused, when it was. */
  error?: string;
}

export interface StoredSchedule {
  record: ScheduleRecord;
  revision: number;
}

export interface ScheduleStore {
  get(key: string): Promise<StoredSchedule | undefined>;
  /**
   * Writes `record` if the entry is still at `revision` (or absent, when `revision` is undefined). Returns
   * the new revision, or undefined when another writer got there first.
   */
  compareAndSet(
    key: string,
    record: ScheduleRecord,
    revision: number | undefined,
  ): Promise<number | undefined>;
}

/** A store on a JetStream KV bucket. */
export function kvScheduleStore(kv: KV): ScheduleStore {
  return {
    async get(key) {
      const entry = await kv.get(key);
      if (!entry || entry.operation !== "PUT") return undefined;
      return { record: entry.json<ScheduleRecord>(), revision: entry.revision };
    },
    async compareAndSet(key, record, revision) {
      const data = JSON.stringify(record);
      try {
        return revision === undefined ? await kv.create(key, data) : await kv.update(key, data, revision);
      } catch (e) {
        if (isRevisionConflict(e)) return undefined;
        throw e;
      }
    },
  };
}

/** JetStream answers a failed expectation with "wrong last sequence" (10071) or "key exists". */
function isRevisionConflict(e: unknown): boolean {
  const message = e instanceof Error ? e.message : String(e);
  return /wrong last sequence|key exists|10071/i.test(message);
}
