/** Reads and writes execution state in the JetStream KV bucket (one JSON value per execution id). */
import type { JetStreamManager } from "@nats-io/jetstream";
import type { KV } from "@nats-io/kv";
import type { ExecutionState } from "./execution_state.ts";

export class StateStore {
  constructor(readonly kv: KV, private readonly jsm: JetStreamManager, private readonly bucket: string) {}

  async get(execId: string): Promise<ExecutionState | undefined> {
    const entry = await this.kv.get(execId);
    return entry?.operation === "PUT" ? entry.json<ExecutionState>() : undefined;
  }

  async getWithRevision(execId: string): Promise<{ state?: ExecutionState; revision: number }> {
    const entry = await this.kv.get(execId);
    if (!entry || entry.operation !== "PUT") return { revision: entry?.revision ?? 0 };
    return { state: entry.json<ExecutionState>(), revision: entry.revision };
  }

  /** Writes with optimistic concurrency: throws when someone else wrote since `revision`. */
  async put(state: ExecutionState, revision: number): Promise<number> {
    const value = new TextEncoder().encode(JSON.stringify(state));
    return revision === 0
      ? await this.kv.create(state.exec_id, value)
      : await this.kv.update(state.exec_id, value, revision);
  }

  /**
   * Every execution id, oldest first (UUIDv7 ids sort by time). Read from the bucket's stream info rather
   * than `kv.keys()`, whose iterator was seen to wait for ever when keys are written while it runs.
   */
  async ids(): Promise<string[]> {
    const prefix = `$KV.${this.bucket}.`;
    const info = await this.jsm.streams.info(`KV_${this.bucket}`, { subjects_filter: `${prefix}>` });
    return Object.keys(info.state.subjects ?? {}).map((s) => s.slice(prefix.length)).sort();
  }

  /** Executions with a task waiting for `signalId`. */
  async findWaiting(signalId: string): Promise<ExecutionState[]> {
    const out: ExecutionState[] = [];
    for (const id of await this.ids()) {
      const state = await this.get(id);
      if (state?.tasks.some((t) => t.status === "WAITING" && t.waiting_for === signalId)) out.push(state);
    }
    return out;
  }
}
