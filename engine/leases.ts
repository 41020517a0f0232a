/**
 * Execution leases: at most one engine drives an execution at a time. A lease is a KV entry naming its
 * holder; the holder refreshes it while the execution is active, and the bucket's TTL frees it when a holder
 * dies. An engine restarted with the same instance id takes its own leases back at once.
 */
import type { KV } from "@nats-io/kv";
import { getLogger } from "../pkg/logger/mod.ts";

const log = getLogger(["engine", "leases"]);

export class Leases {
  private readonly revisions = new Map<string, number>();

  constructor(private readonly kv: KV, readonly instanceId: string) {}

  /** True when this instance now holds the lease of `execId`. */
  async acquire(execId: string): Promise<boolean> {
    const value = new TextEncoder().encode(this.instanceId);
    try {
      this.revisions.set(execId, await this.kv.create(execId, value));
      return true;
    } catch (e) {
      // Someone holds it (or held it): whose it is decides.
      log.debug("lease {execId} not created: {error}", { execId, error: String(e) });
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
    } catch (e) {
      log.debug("lease {execId} taken meanwhile: {error}", { execId, error: String(e) });
      return false;
    }
  }

  /**
   * Extends the lease. False when it is certainly lost: another holder wrote it since. A refresh that
   * fails for want of NATS is retried on the next beat (true), well within the TTL.
   */
  async refresh(execId: string): Promise<boolean> {
    const revision = this.revisions.get(execId);
    if (revision === undefined) return true;
    try {
      const value = new TextEncoder().encode(this.instanceId);
      this.revisions.set(execId, await this.kv.update(execId, value, revision));
      return true;
    } catch (e) {
      return !/wrong last sequence/i.test(e instanceof Error ? e.message : String(e));
    }
  }

  /** Frees the lease, unless another engine holds it by now. */
  async release(execId: string): Promise<void> {
    const revision = this.revisions.get(execId);
    this.revisions.delete(execId);
    if (revision === undefined) return;
    // Refused when another engine holds it by now; a lease left behind expires with its TTL.
    await this.kv.delete(execId, { previousSeq: revision }).catch((e) =>
      log.debug("lease {execId} not released: {error}", { execId, error: String(e) })
    );
  }
}
