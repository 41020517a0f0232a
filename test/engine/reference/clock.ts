/**
 * A virtual clock for the reference interpreter: timers fire only when the interpreter has nothing else to
 * do, in order of due time (then of creation), so an evaluation never depends on real time.
 */

/** Thrown into a task whose branch was stopped (cancel, time-out, a decided race or fail_fast). */
export class Stopped extends Error {
  constructor(readonly reason: string) {
    super(`stopped: ${reason}`);
  }
}

interface Timer {
  at: number;
  seq: number;
  fire(): void;
}

export class VirtualClock {
  now = 0;
  #seq = 0;
  #timers: Timer[] = [];

  /** Resolves after `ms` of virtual time; rejects with `Stopped` when `signal` aborts first. */
  sleep(ms: number, signal: AbortSignal): Promise<void> {
    return new Promise((resolve, reject) => {
      if (signal.aborted) return reject(signal.reason);
      const timer: Timer = {
        at: this.now + Math.max(0, ms),
        seq: this.#seq++,
        fire: () => {
          signal.removeEventListener("abort", onAbort);
          resolve();
        },
      };
      const onAbort = () => {
        this.#timers = this.#timers.filter((t) => t !== timer);
        reject(signal.reason);
      };
      signal.addEventListener("abort", onAbort, { once: true });
      this.#timers.push(timer);
    });
  }

  /** Fires the earliest timer; false when none is left. */
  advance(): boolean {
    if (this.#timers.length === 0) return false;
    this.#timers.sort((a, b) => a.at - b.at || a.seq - b.seq);
    const timer = this.#timers.shift()!;
    this.now = Math.max(this.now, timer.at);
    timer.fire();
    return true;
  }
}

/** Lets every pending promise reaction run; the interpreter uses no real timer, so this is quiescence. */
export function settle(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 0));
}

/** A child abort signal: aborts when the parent does, or on its own. */
export function childController(parent: AbortSignal): AbortController {
  const controller = new AbortController();
  if (parent.aborted) controller.abort(parent.reason);
  else parent.addEventListener("abort", () => controller.abort(parent.reason), { once: true });
  return controller;
}
