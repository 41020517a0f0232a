/**
 * One timer for every coalescing window of the state manager's documents (state_manager.ts `openWindow`).
 * A window per document was a Node-compat `setTimeout` and mostly a `clearTimeout` per event burst: 1.6% of
 * the engine's busy samples under W2 (V8 profile, 2026-12-03, issue 11), plus a `Timeout` object each. The
 * windows have few lengths (the short and the running window), and a window of one length due later was
 * opened later: each length keeps its windows in a list already in due order, and one timer is armed for the
 * earliest head. There is no stop: windows still open when the state manager stops are left to fire, so
 * what it took is still written.
 *
 * @module
 */

/** A window: `fire` runs once it is due, unless it was closed first. */
export interface Window {
  readonly due: number;
  closed: boolean;
}

interface Entry extends Window {
  fire: () => void;
}

/** Windows of one length, in due order, read from `head`; the read part is dropped now and then. */
interface Lane {
  entries: Entry[];
  head: number;
}

export class WindowTimers {
  private readonly lanes = new Map<number, Lane>();
  private timer?: ReturnType<typeof setTimeout>;
  private armedFor = Infinity;

  /** Opens a window of `ms`; `fire` runs in a later macrotask once it is due, unless `close` comes first. */
  open(ms: number, fire: () => void): Window {
    let lane = this.lanes.get(ms);
    if (!lane) this.lanes.set(ms, lane = { entries: [], head: 0 });
    const entry: Entry = { due: performance.now() + ms, closed: false, fire };
    lane.entries.push(entry);
    this.arm(entry.due);
    return entry;
  }

  /** Closes a window before it is due: it will not fire. */
  close(window: Window): void {
    window.closed = true;
  }

  private arm(due: number): void {
    if (this.timer !== undefined && this.armedFor <= due) return;
    clearTimeout(this.timer);
    this.armedFor = due;
    this.timer = setTimeout(() => this.run(), Math.max(0, due - performance.now()));
  }

  private run(): void {
    this.timer = undefined;
    this.armedFor = Infinity;
    const now = performance.now();
    let next = Infinity;
    for (const lane of this.lanes.values()) {
      while (lane.head < lane.entries.length) {
        const entry = lane.entries[lane.head];
        if (!entry.closed && entry.due > now) break;
        lane.head++;
        if (entry.closed) continue;
        entry.closed = true;
        entry.fire();
      }
      if (lane.head === lane.entries.length) {
        lane.entries = [];
        lane.head = 0;
      } else if (lane.head > 1_024 && lane.head * 2 > lane.entries.length) {
        lane.entries = lane.entries.slice(lane.head);
        lane.head = 0;
      }
      if (lane.head < lane.entries.length) next = Math.min(next, lane.entries[lane.head].due);
    }
    if (next < Infinity) this.arm(next);
  }
}
