/**
 * Executions this process's orchestrator accepted and no executor here has activated yet. Only for those
 * may an executor skip reading the history: JetStream's delivery count cannot tell a first delivery after
 * a crash (nats-server 2.9 was seen redelivering a message with count 1), so anything not known here is
 * replayed from its history. Bounded: an execution activated by another engine is forgotten in time.
 */
export class AcceptedExecutions {
  private readonly ids = new Set<string>();

  constructor(private readonly limit = 10_000) {}

  add(execId: string): void {
    this.ids.add(execId);
    if (this.ids.size > this.limit) this.ids.delete(this.ids.values().next().value!);
  }

  /** True (once) when this process accepted the execution and nothing has activated it yet. */
  take(execId: string): boolean {
    return this.ids.delete(execId);
  }
}
