/**
 * The state manager folds every state event into the execution state in KV. Events of one execution are
 * applied in order and coalesced: while a write is in flight, later events queue and go out in one write.
 * Several engines may run it on one durable consumer; the KV revision check settles their races.
 */
import type { DescMessage, MessageShape } from "@bufbuild/protobuf";
import type { Bus, Consumer, Delivery } from "../../pkg/nats/mod.ts";
import { STREAMS } from "../../pkg/nats/mod.ts";
import type { StoredEvent } from "../history/read_history.ts";
import type { ExecutionState } from "./execution_state.ts";
import { isTerminal } from "./execution_state.ts";
import { foldEvent } from "./state_fold.ts";
import type { StateStore } from "./state_store.ts";

const FOLDED = /^compozy\.[^.]+\.(workflow|task)\.evts\./;

interface Pending {
  events: Array<{ event: StoredEvent; done: (error?: unknown) => void }>;
  running: boolean;
}

export class StateManager {
  private readonly queues = new Map<string, Pending>();
  private readonly cache = new Map<string, { state: ExecutionState; revision: number }>();
  private consumer?: Consumer;

  constructor(private readonly bus: Bus, private readonly store: StateStore) {}

  async start(): Promise<void> {
    this.consumer = await this.bus.consume({
      stream: STREAMS.events,
      durable: "compozy-state-manager",
      filterSubject: "compozy.*.*.evts.*.*",
      maxAckPending: 20_000,
      batch: 512,
      // Tool and agent events are history only: the state folds workflow and task events.
      accept: (subject) => FOLDED.test(subject),
      handler: (message, delivery) => this.apply(message, delivery),
    });
  }

  async stop(): Promise<void> {
    await this.consumer?.stop();
  }

  private apply(message: MessageShape<DescMessage>, delivery: Delivery): Promise<void> | void {
    const tokens = delivery.subject.split(".");
    const component = tokens[2];
    const execId = (message as { workflow?: { execId: string } }).workflow?.execId;
    if (!execId) return;
    const event: StoredEvent = {
      seq: 0,
      subject: delivery.subject,
      type: `${component}.${tokens[5]}`,
      time: timeOf(message),
      message,
    };
    return new Promise((resolve, reject) => {
      let queue = this.queues.get(execId);
      if (!queue) this.queues.set(execId, queue = { events: [], running: false });
      queue.events.push({ event, done: (e) => e ? reject(e) : resolve() });
      if (!queue.running) this.drain(execId, queue);
    });
  }

  private async drain(execId: string, queue: Pending): Promise<void> {
    queue.running = true;
    while (queue.events.length) {
      const batch = queue.events.splice(0);
      try {
        await this.write(execId, batch.map((b) => b.event));
        for (const b of batch) b.done();
      } catch (e) {
        for (const b of batch) b.done(e);
      }
    }
    queue.running = false;
    this.queues.delete(execId);
  }

  private async write(execId: string, events: StoredEvent[]): Promise<void> {
    for (let attempt = 0; attempt < 5; attempt++) {
      const current = this.cache.get(execId) ?? await this.store.getWithRevision(execId);
      let state = current.state ? structuredClone(current.state) : undefined;
      for (const event of events) state = foldEvent(state, event);
      // An event folded before its execution's start (another engine holds the start): try again later.
      if (!state) throw new Error(`state of execution ${execId}: start not recorded yet`);
      if (current.state && JSON.stringify(current.state) === JSON.stringify(state)) return;
      try {
        const revision = await this.store.put(state, current.revision);
        if (isTerminal(state.status)) this.cache.delete(execId);
        else this.cacheSet(execId, { state, revision });
        return;
      } catch {
        this.cache.delete(execId); // Another writer won: fold again on top of what it wrote.
      }
    }
    throw new Error(`state of execution ${execId}: too many concurrent writers`);
  }

  private cacheSet(execId: string, value: { state: ExecutionState; revision: number }): void {
    this.cache.delete(execId);
    this.cache.set(execId, value);
    if (this.cache.size > 5_000) this.cache.delete(this.cache.keys().next().value!);
  }
}

function timeOf(message: MessageShape<DescMessage>): Date {
  const time = (message as { metadata?: { time?: { seconds: bigint; nanos: number } } }).metadata?.time;
  return time ? new Date(Number(time.seconds) * 1000 + Math.floor(time.nanos / 1e6)) : new Date();
}
