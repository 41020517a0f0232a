/**
 * An execution's end reaches its state document even when the state fold's one delivery of it does not land.
 * The fold (state_manager.ts) is the only writer of a document after the start, and it writes an end once,
 * from one delivery of the end event on the shared consumer: in test/e2e/cluster_test.ts (ci38f) an end
 * stored while the stream leader was killed never showed, the document stayed RUNNING for good, and nothing
 * looked again (the event was neither refused nor retried: either nats-server 2.9.10 did not deliver it
 * again after the consumer's leader moved, or its write was overwritten by a lost update, which the
 * replicated buckets of 2.9 allow, see ended_tasks.ts).
 *
 * So whoever knows that the history holds an end checks that the state shows it, and writes it from the
 * history when it does not within CATCH_UP_AFTER_MS: the driver that recorded the end, and any later
 * activation that finds the history ended (a command that came back because the engine died before the
 * check). The command stays unacknowledged until then, so a check that fails comes back with it. A check
 * costs nothing when this engine's own fold stored the end on a bucket of one replica (it is known here),
 * else a read now and then until the end shows.
 *
 * @module
 */
import { getLogger } from "../../pkg/logger/mod.ts";

const log = getLogger(["engine", "state"]);

/**
 * How long the end may take to show before it is written from the history: above what a NATS node's
 * fail-over delays the fold by, and seconds, not the minutes of an ack wait's redeliveries. In the cluster
 * test (stream leader killed, RAFT elections of 4-9 s, a pull's 5 s expiry) the ends of all 300 executions
 * showed 5.1 to 12.2 s after they were recorded (median 9.8 s, one run of four, 2026-12-07; the other three
 * showed none later than 3 s): a bound of 5 s would have written each of them again from the history, a
 * burst of reads and writes on a cluster just back.
 */
export const CATCH_UP_AFTER_MS = 15_000;

/** The first read of the document when the end was not stored here, and the longest pause between two. */
const FIRST_READ_MS = 200;
const MAX_PAUSE_MS = 2_000;

/** Executions whose end was stored here lately remembered; past it the oldest are forgotten (read instead). */
const REMEMBERED_ENDS = 4_096;

/**
 * Ends written from the history at once by one engine. The fold lags on a loaded cluster too (in one cluster
 * test run, after a node's kill, every end of 300 showed 5 to 12 s late, all within 2 s once the fold went
 * on): were that lag ever past the bound, each end would cost a history read and its writes at once, more
 * load on a state that lags for load. The others wait their turn, and write nothing if the end showed
 * meanwhile.
 */
export const REPAIRS_AT_ONCE = 4;

/** Turns for the writes from the history (see REPAIRS_AT_ONCE). */
export class RepairTurns {
  private running = 0;
  private readonly queued: Array<() => void> = [];

  constructor(private readonly atOnce = REPAIRS_AT_ONCE) {}

  /** Runs `repair` once a turn is free. */
  async take<T>(repair: () => Promise<T>): Promise<T> {
    if (this.running >= this.atOnce) await new Promise<void>((resolve) => this.queued.push(resolve));
    else this.running++;
    try {
      return await repair();
    } finally {
      const next = this.queued.shift();
      if (next) next();
      else this.running--;
    }
  }
}

/** The ends this engine's fold stored, and the checks waiting for one. */
export class StoredEnds {
  private readonly recent = new Set<string>();
  private readonly waiters = new Map<string, Set<() => void>>();

  /** This engine stored (or found stored) the execution's end. */
  stored(execId: string): void {
    this.recent.add(execId);
    if (this.recent.size > REMEMBERED_ENDS) this.recent.delete(this.recent.values().next().value!);
    for (const wake of this.waiters.get(execId) ?? []) wake();
  }

  /** True once the execution's end is stored here (at once if it was), false after `ms`. */
  wait(execId: string, ms: number): Promise<boolean> {
    if (this.recent.has(execId)) return Promise.resolve(true);
    return new Promise((resolve) => {
      let waiting = this.waiters.get(execId);
      if (!waiting) this.waiters.set(execId, waiting = new Set());
      const done = (heard: boolean) => {
        clearTimeout(timer);
        waiting.delete(wake);
        if (waiting.size === 0 && this.waiters.get(execId) === waiting) this.waiters.delete(execId);
        resolve(heard);
      };
      const wake = () => done(true);
      const timer = setTimeout(() => done(false), ms);
      waiting.add(wake);
    });
  }
}

/** What the check needs of the state. */
export interface EndCatchUpState {
  ends: StoredEnds;
  repairs: RepairTurns;
  /** Whether the stored document shows an end. */
  showsEnd(execId: string): Promise<boolean>;
  /** Writes the end (and its tasks' ends) from the history; false when the history holds no end. */
  writeEndFromHistory(execId: string, correlationId: string): Promise<boolean>;
  /**
   * Whether an end this engine stored may have been overwritten since: on a replicated bucket nats-server 2.9
   * may accept another writer's update at the same revision (ended_tasks.ts), so the document is read once.
   */
  replicated: boolean;
}

/** The state still does not show an end the history holds, after it was written from the history. */
export class StateBehindHistoryError extends Error {
  constructor(readonly execId: string, message: string, options?: ErrorOptions) {
    super(`the state of execution ${execId} ${message}`, options);
    this.name = "StateBehindHistoryError";
  }
}

/**
 * Resolves once the execution's document shows the end its history holds, written from the history if it
 * did not within `afterMs`. Throws StateBehindHistoryError when it still does not (or the history read
 * shows no end: a read that missed it), and the failed reads or writes of NATS as they come: the caller's
 * command comes back and the check is made again.
 */
export async function catchUpEnd(
  state: EndCatchUpState,
  execId: string,
  correlationId: string,
  afterMs = CATCH_UP_AFTER_MS,
): Promise<void> {
  const began = Date.now();
  const deadline = began + afterMs;
  let pause = FIRST_READ_MS;
  let heard = false;
  while (true) {
    const ms = Math.max(0, Math.min(pause, deadline - Date.now()));
    if (!heard) heard = await state.ends.wait(execId, ms);
    else await new Promise((resolve) => setTimeout(resolve, ms));
    if (heard && !state.replicated) return;
    if (await state.showsEnd(execId)) return;
    if (Date.now() >= deadline) break;
    pause = Math.min(pause * 2, MAX_PAUSE_MS);
  }
  await state.repairs.take(async () => {
    // The end may have shown while this waited for its turn.
    if (await state.showsEnd(execId)) return;
    log.warn(
      "The state of execution {exec_id} did not show its end {wait_ms} ms after it was recorded; writing it from the history",
      { exec_id: execId, wait_ms: Date.now() - began },
    );
    if (!await state.writeEndFromHistory(execId, correlationId)) {
      throw new StateBehindHistoryError(execId, "was not written: its history read holds no end");
    }
    if (!await state.showsEnd(execId)) {
      throw new StateBehindHistoryError(
        execId,
        "does not show its end after it was written from the history",
      );
    }
    log.info("The state of execution {exec_id} shows its end, written from the history", { exec_id: execId });
  });
}
