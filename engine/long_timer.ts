/**
 * A timer for any delay. setTimeout fires at once for a delay over 2^31-1 ms (about 24.86 days: it is
 * clamped to 1 ms), so a longer delay is waited in steps of at most that, each measured again on the clock.
 */

/** The largest delay setTimeout takes as given. */
export const MAX_TIMER_MS = 2 ** 31 - 1;

export interface LongTimer {
  clear(): void;
}

/** Calls `fn` once `delayMs` have passed (at once for 0 or less); `clear()` stops it. */
export function setLongTimeout(fn: () => void, delayMs: number): LongTimer {
  const due = Date.now() + Math.max(0, delayMs);
  let handle: ReturnType<typeof setTimeout>;
  const step = () => {
    const left = due - Date.now();
    handle = left > MAX_TIMER_MS ? setTimeout(step, MAX_TIMER_MS) : setTimeout(fn, Math.max(0, left));
  };
  step();
  return { clear: () => clearTimeout(handle) };
}
