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
   * True (once) when this process accepted the execution less than `withinMs` ago (the ack wait: before it,
   * no other engine can have held its execute command and died) and nothing here has activated it yet.
   */
  take(execId: string, withinMs: number): boolean {
    const acceptedAt = this.ids.get(execId);
    this.ids.delete(execId);
    return acceptedAt !== undefined && Date.now() - acceptedAt < withinMs;
  }
}
