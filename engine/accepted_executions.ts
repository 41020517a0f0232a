/**
 * Executions this process's orchestrator accepted and no executor here has activated yet. Only for those
 * may an executor skip reading the history: JetStream's delivery count cannot tell a first delivery after
 * a crash (nats-server 2.9 was seen redelivering a message with count 1), so anything not known here is
 * replayed from its history. Bounded: an execution activated by another engine is forgotten in time.
 */
export class AcceptedExecutions {
  /** Exec id → when it was accepted. */
  private readonly ids = new Map<string, number>();

  constructor(private readonly limit = 10_000) {}

  add(execId: string): void {
    this.ids.set(execId, Date.now());
    if (this.ids.size > this.limit) this.ids.delete(this.ids.keys().next().value!);
  }

  /**
   * True (once) when this process accepted the execution less than `withinMs` ago and nothing here has
   * activated it yet. Only a candidate: another engine may have driven it meanwhile and given its command back
   * (a nak), so the executor also asks that its lease be taken where no engine held it (Leases.takenAnew),
   * which shows that only within the lease TTL: `withinMs` is at most that TTL, and the ack wait (before it,
   * no engine that held the command and died has had it redelivered).
   */
  take(execId: string, withinMs: number): boolean {
    const acceptedAt = this.ids.get(execId);
    this.ids.delete(execId);
    return acceptedAt !== undefined && Date.now() - acceptedAt < withinMs;
  }
}
