/**
 * What one engine reports about its own work, for `/api/metrics`: the executions it drives, how long an
 * activation took (from the command's delivery to a driver ready to run: lease, history read, replay), and
 * how many commands came to it more than once. The API process asks every engine at scrape time on
 * ENGINE_STATS_SUBJECT (a core request answered by each engine) and labels the series by instance.
 *
 * @module
 */
import type { LeaseStatus } from "./leases.ts";

/** Core NATS subject every engine answers with its EngineStatsReport (JSON). */
export const ENGINE_STATS_SUBJECT = "compozy.metrics.engine";

/** Activation latency buckets in seconds: a fresh activation takes well under a millisecond. */
export const ACTIVATION_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5];

export interface EngineStatsReport {
  instance: string;
  active_executions: number;
  /** Cumulative counts per bucket of ACTIVATION_BUCKETS (le), with the sum (seconds) and count. */
  activation_seconds: { buckets: number[]; counts: number[]; sum: number; count: number };
  /** Commands delivered more than once (their first engine died, or a handler failed and retried). */
  redeliveries: number;
  /**
   * Executions this engine resumed mid-run (tasks already recorded) that it had not driven before: moves
   * from another engine (or from this one before a restart).
   */
  taken_over: number;
  /** Lease renewals by what they found (see LeaseStatus): under load, `expired` means drivers given up. */
  lease_renewals: Record<LeaseStatus, number>;
  /** Messages this engine's connection received and sent since it connected (for `deno task bench cluster`). */
  nats_messages?: { in: number; out: number };
}

export class EngineStats {
  private readonly counts = ACTIVATION_BUCKETS.map(() => 0);
  private sum = 0;
  private count = 0;
  private redeliveries = 0;
  private takenOver = 0;
  private readonly renewals: Record<LeaseStatus, number> = { held: 0, unconfirmed: 0, lost: 0, expired: 0 };

  constructor(readonly instance: string, private readonly active: () => number) {}

  observeActivation(seconds: number): void {
    for (let i = 0; i < ACTIVATION_BUCKETS.length; i++) {
      if (seconds <= ACTIVATION_BUCKETS[i]) this.counts[i]++;
    }
    this.sum += seconds;
    this.count++;
  }

  countDelivery(deliveryCount: number): void {
    if (deliveryCount > 1) this.redeliveries++;
  }

  countRenewal(status: LeaseStatus): void {
    this.renewals[status]++;
  }

  countTakeover(): void {
    this.takenOver++;
  }

  report(): EngineStatsReport {
    return {
      instance: this.instance,
      active_executions: this.active(),
      activation_seconds: {
        buckets: ACTIVATION_BUCKETS,
        counts: [...this.counts],
        sum: this.sum,
        count: this.count,
      },
      redeliveries: this.redeliveries,
      taken_over: this.takenOver,
      lease_renewals: { ...this.renewals },
    };
  }
}
