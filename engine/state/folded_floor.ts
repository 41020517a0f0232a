/**
 * How far the state consumer has folded `EVENTS`, as one engine can know it. Several engines share the
 * `compozy-state` consumer, so the task events of an execution may be held by another engine (or by one
 * that died, until the ack wait gives them back) when its end reaches this one. An execution's end is
 * written only once every event before it is folded: either acknowledged on the server (the consumer's ack
 * floor) or taken by this engine, whose own pending writes the state manager waits for.
 *
 * With one engine every event passes through it, so this is known here with no request. With several, the
 * events another engine took show as gaps, and the server's ack floor is polled (one request at a time, for
 * all the ends waiting) until it passes them. The wait is bounded: an end is written anyway, with a warning,
 * after `maxWaitMs`.
 *
 * @module
 */
import { getLogger } from "../../pkg/logger/mod.ts";

const log = getLogger(["engine", "state"]);

export interface FoldedFloorOptions {
  /** The consumer's ack floor on the server: every event at or below this stream sequence is acknowledged. */
  serverFloor: () => Promise<number>;
  /** How long an end waits at most for the events before it. */
  maxWaitMs: number;
  /** How often the server's floor is asked for while an end waits; default 20 ms. */
  pollMs?: number;
}

/** Events taken above the floor past which the server's floor is asked for, so that the map stays small. */
const TAKEN_LIMIT = 10_000;

interface Waiter {
  seq: number;
  deadline: number;
  resolve: (reached: boolean) => void;
}

export class FoldedFloor {
  /** Every event at or below this stream sequence is acknowledged on the server or folded here. */
  private floor = 0;
  /** Events above the floor this engine took: true once folded. */
  private readonly taken = new Map<number, boolean>();
  private readonly waiters = new Set<Waiter>();
  private timer?: ReturnType<typeof setTimeout>;
  private asking = false;
  private stopped = false;

  constructor(private readonly options: FoldedFloorOptions) {}

  /** This engine took the event at `seq` (before handling it). */
  take(seq: number): void {
    if (seq > this.floor && !this.taken.has(seq)) this.taken.set(seq, false);
  }

  /** The event at `seq` is folded (or needs no fold) and is about to be acknowledged. */
  folded(seq: number): void {
    if (seq <= this.floor) return;
    this.taken.set(seq, true);
    while (this.taken.get(this.floor + 1) === true) this.taken.delete(++this.floor);
    if (this.taken.size > TAKEN_LIMIT) this.ask();
  }

  /** Handling the event at `seq` failed here: it comes back, maybe to another engine. */
  released(seq: number): void {
    this.taken.delete(seq);
  }

  /**
   * Resolves true once every event before `seq` is acknowledged on the server or taken here, false when
   * `maxWaitMs` ran out first.
   */
  before(seq: number): Promise<boolean> {
    if (this.covered(seq)) return Promise.resolve(true);
    return new Promise((resolve) => {
      this.waiters.add({ seq, deadline: Date.now() + this.options.maxWaitMs, resolve });
      this.ask();
    });
  }

  /** Ends every wait (each resolves false) and the polling. */
  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    for (const waiter of this.waiters) waiter.resolve(false);
    this.waiters.clear();
  }

  private covered(seq: number): boolean {
    for (let s = this.floor + 1; s < seq; s++) if (!this.taken.has(s)) return false;
    return true;
  }

  /** Asks the server for its floor now, unless a request is in flight. */
  private ask(): void {
    if (this.asking || this.stopped) return;
    this.asking = true;
    clearTimeout(this.timer);
    this.timer = undefined;
    this.options.serverFloor().then(
      (floor) => this.raise(floor),
      (error) => log.debug("state consumer ack floor not read: {error}", { error }),
    ).finally(() => {
      this.asking = false;
      this.settle();
    });
  }

  private raise(floor: number): void {
    if (floor <= this.floor) return;
    this.floor = floor;
    for (const seq of this.taken.keys()) if (seq <= floor) this.taken.delete(seq);
    while (this.taken.get(this.floor + 1) === true) this.taken.delete(++this.floor);
  }

  /** Releases the waits now covered or out of time; polls again later for the others. */
  private settle(): void {
    const now = Date.now();
    for (const waiter of this.waiters) {
      if (this.covered(waiter.seq)) {
        this.waiters.delete(waiter);
        waiter.resolve(true);
      } else if (now >= waiter.deadline) {
        this.waiters.delete(waiter);
        log.warn(
          "The events before state event {seq} were not all folded after {wait_ms} ms (floor {floor}); writing the end anyway",
          { seq: waiter.seq, wait_ms: this.options.maxWaitMs, floor: this.floor },
        );
        waiter.resolve(false);
      }
    }
    if (this.waiters.size && !this.stopped && this.timer === undefined) {
      this.timer = setTimeout(() => {
        this.timer = undefined;
        this.ask();
      }, this.options.pollMs ?? 20);
    }
  }
}
