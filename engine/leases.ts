/**
 * Execution leases: at most one engine drives an execution at a time. A lease is a KV entry naming its
 * holder; the holder refreshes it while the execution is active, and the bucket's TTL frees it when a holder
 * dies. An engine restarted with the same instance id takes its own leases back at once.
 */
import type { KV } from "@nats-io/kv";

export class Leases {
  private readonly revisions = new Map<string, number>();

  constructor(private readonly kv: KV, readonly instanceId: string) {}

  /** True when this instance now holds the lease of `execId`. */
  async acquire(execId: string): Promise<boolean> {
    const value = new TextEncoder().encode(this.instanceId);
    try {
      this.revisions.set(execId, await this.kv.create(execId, value));
      return true;
    } catch {
      const entry = await this.kv.get(execId);
      if (!entry || entry.operation !== "PUT") return await this.retryCreate(execId, value);
      if (entry.string() !== this.instanceId) return false;
      this.revisions.set(execId, await this.kv.update(execId, value, entry.revision));
      return true;
    }
  }

  private async retryCreate(execId: string, value: Uint8Array): Promise<boolean> {
    try {
      this.revisions.set(execId, await this.kv.create(execId, value));
      return true;
    } catch {
      return false;
    }
  }

  /** Extends the lease; best effort (a failed refresh is retried on the next beat, well within the TTL). */
  async refresh(execId: string): Promise<void> {
    const revision = this.revisions.get(execId);
    if (revision === undefined) return;
    try {
      this.revisions.set(
        execId,
        await this.kv.update(execId, new TextEncoder().encode(this.instanceId), revision),
      );
    } catch {
      // Lost or taken over: the next command for this execution will find out.
    }
  }

  async release(execId: string): Promise<void> {
    this.revisions.delete(execId);
    await this.kv.delete(execId).catch(() => {});
  }
}
