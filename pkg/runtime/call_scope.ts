/**
 * Keeps the calls of a warm tool worker apart (runs inside the worker, see tool_worker.ts).
 *
 * Each call runs inside an `AsyncLocalStorage` context holding its id. The context follows the code that
 * the call schedules (promises, timers, Node's timers, message ports), so code always knows which call it
 * belongs to, even when it runs after that call ended or during the next one. With that:
 * - timers, intervals, immediates and fetches started through the globals are tracked per phase and
 *   cancelled (a fetch through an `AbortController`) when the call returns; the module's load is a phase
 *   of its own, ended before the first call;
 * - a tracked API called by code whose call has ended is refused, and the worker reports that work was
 *   left behind, so the host thread retires it (it cannot know what else that work holds);
 * - log lines are attributed by context, so a late line is dropped instead of landing in another call.
 *
 * The scope keeps its own references to the originals: a tool that replaces a global reaches only the
 * global (reset after each call by global_guard.ts), never this bookkeeping.
 *
 * @module
 */
import { AsyncLocalStorage } from "node:async_hooks";

// Taken before any tool code runs: the tool may replace these globals during a call.
const AbortControllerClass = AbortController;
const RequestClass = Request;
const DOMExceptionClass = DOMException;
const anySignal = AbortSignal.any.bind(AbortSignal);

/** The phase of the module's load, before any call. */
export const LOAD_PHASE = -1;
/** No phase: between calls. */
const IDLE = 0;

type TimerHandle = unknown;
type Scheduler = (callback: unknown, ...rest: unknown[]) => TimerHandle;
type Canceller = (handle: TimerHandle) => void;

interface TimerGlobals {
  setTimeout: Scheduler;
  setInterval: Scheduler;
  clearTimeout: Canceller;
  clearInterval: Canceller;
  setImmediate?: Scheduler;
  clearImmediate?: Canceller;
  fetch: typeof fetch;
}

export class CallScope {
  readonly #context = new AsyncLocalStorage<number>();
  readonly #onLeftover: (what: string) => void;
  readonly #timers = new Map<TimerHandle, Canceller>();
  readonly #fetches = new Set<AbortController>();
  #phase = LOAD_PHASE;

  /** `onLeftover` hears of each tracked API that code of an ended call tried to use. */
  constructor(onLeftover: (what: string) => void) {
    this.#onLeftover = onLeftover;
  }

  /**
   * The phase the running code belongs to: the running call's id, `LOAD_PHASE` while the module loads,
   * or 0 when it belongs to no running phase (work left by an ended call, or code outside any call).
   */
  current(): number {
    const owner = this.#context.getStore();
    if (this.#phase === LOAD_PHASE) return owner === undefined ? LOAD_PHASE : IDLE;
    return owner !== undefined && owner === this.#phase ? owner : IDLE;
  }

  /** True while call `id` runs. */
  isRunning(id: number): boolean {
    return id > 0 && id === this.#phase;
  }

  /** Runs `fn` as call `id`: what it schedules belongs to that call. */
  run<T>(id: number, fn: () => T): T {
    this.#phase = id;
    return this.#context.run(id, fn);
  }

  /** Ends the current phase: cancels every timer, interval, immediate and fetch it started. */
  end(): void {
    this.#phase = IDLE;
    for (const [handle, cancel] of this.#timers) cancel(handle);
    this.#timers.clear();
    for (const controller of this.#fetches) {
      controller.abort(
        new DOMExceptionClass("the tool call that started this fetch has ended", "AbortError"),
      );
    }
    this.#fetches.clear();
  }

  /** Replaces the timer and fetch globals of `scope` with tracked ones. */
  install(scope: TimerGlobals): void {
    const { clearTimeout, clearInterval, clearImmediate } = scope;
    scope.setTimeout = this.#trackTimer("setTimeout", scope.setTimeout, clearTimeout, true);
    scope.setInterval = this.#trackTimer("setInterval", scope.setInterval, clearInterval, false);
    scope.clearTimeout = this.#untrack(clearTimeout);
    scope.clearInterval = this.#untrack(clearInterval);
    if (scope.setImmediate && clearImmediate) {
      scope.setImmediate = this.#trackTimer("setImmediate", scope.setImmediate, clearImmediate, true);
      scope.clearImmediate = this.#untrack(clearImmediate);
    }
    scope.fetch = this.#trackFetch(scope.fetch);
  }

  /** Throws when the running code belongs to no running phase, and reports the left-over work. */
  #admit(what: string): void {
    if (this.current() !== IDLE) return;
    this.#onLeftover(what);
    throw new TypeError(`${what} is refused: the tool call that started this work has ended`);
  }

  #trackTimer(what: string, schedule: Scheduler, cancel: Canceller, once: boolean): Scheduler {
    const timers = this.#timers;
    return (callback: unknown, ...rest: unknown[]) => {
      this.#admit(what);
      // A timer that fired is forgotten; it runs after `handle` is assigned (never synchronously).
      const run = typeof callback === "function" && once
        ? (...args: unknown[]) => {
          timers.delete(handle);
          return (callback as (...a: unknown[]) => unknown)(...args);
        }
        : callback;
      const handle = schedule(run, ...rest);
      timers.set(handle, cancel);
      return handle;
    };
  }

  #untrack(cancel: Canceller): Canceller {
    return (handle: TimerHandle) => {
      this.#timers.delete(handle);
      cancel(handle);
    };
  }

  #trackFetch(original: typeof fetch): typeof fetch {
    const fetches = this.#fetches;
    return (input: RequestInfo | URL, init?: RequestInit) => {
      this.#admit("fetch");
      const controller = new AbortControllerClass();
      const own = init?.signal ?? (input instanceof RequestClass ? input.signal : undefined);
      const signal = own ? anySignal([own, controller.signal]) : controller.signal;
      fetches.add(controller);
      return original(input, { ...init, signal }).finally(() => fetches.delete(controller));
    };
  }
}
