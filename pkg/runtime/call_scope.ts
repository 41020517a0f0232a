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
 * - log lines are attributed by context, so a late line is dropped instead of landing in another call;
 * - sockets and servers of Node's `node:net` (which `node:http`, `node:https` and `node:tls` use) are tracked
 *   the same way and destroyed when the call returns; one that stays open (its own methods replaced) retires
 *   the worker.
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
const { defineProperty } = Reflect;

/** The phase of the module's load, before any call. */
export const LOAD_PHASE = -1;
/** No phase: between calls. */
const IDLE = 0;

type TimerHandle = unknown;
type Scheduler = (callback: unknown, ...rest: unknown[]) => TimerHandle;
type Canceller = (handle: TimerHandle) => void;

/** The classes of `node:net` that open sockets; every connection of the Node layer goes through these. */
export interface NodeNet {
  Socket: { prototype: { connect: unknown; destroy: unknown } };
  Server: { prototype: { listen: unknown; close: unknown } };
}

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
  /** Open sockets and servers of the phase, with how to close each and how to tell it stayed open. */
  readonly #sockets = new Map<object, { close: () => void; open: () => boolean; what: string }>();
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
    const sockets = [...this.#sockets.values()];
    this.#sockets.clear();
    for (const socket of sockets) {
      try {
        socket.close();
      } catch (e) {
        this.#onLeftover(`${socket.what}, which failed to close: ${String(e)}`);
        return;
      }
      if (socket.open()) return this.#onLeftover(`${socket.what}, which stayed open`);
    }
  }

  /**
   * Tracks the sockets and servers `node:net` opens (clients of `node:http`/`node:https`/`node:tls` too):
   * `connect` and `listen` are replaced on the prototypes, not writable nor configurable, so a tool cannot
   * take the tracking back; they are closed with the prototypes' own `destroy` and `close`.
   */
  installSockets(net: NodeNet): void {
    const destroy = net.Socket.prototype.destroy as (this: object) => void;
    const close = net.Server.prototype.close as (this: object) => void;
    this.#trackOpen(net.Socket.prototype, "connect", "a node:net socket", {
      close: (socket) => destroy.call(socket),
      open: (socket) => (socket as { destroyed?: unknown }).destroyed !== true,
    });
    this.#trackOpen(net.Server.prototype, "listen", "a node:net server", {
      close: (server) => close.call(server),
      open: (server) => (server as { listening?: unknown }).listening === true,
    });
  }

  #trackOpen(
    proto: object,
    method: string,
    what: string,
    how: { close: (target: object) => void; open: (target: object) => boolean },
  ): void {
    const original = (proto as Record<string, (...args: unknown[]) => unknown>)[method];
    const sockets = this.#sockets;
    const admit = (name: string) => this.#admit(name);
    defineProperty(proto, method, {
      value: function (this: object, ...args: unknown[]) {
        admit(what);
        sockets.set(this, { close: () => how.close(this), open: () => how.open(this), what });
        return original.apply(this, args);
      },
      writable: false,
      configurable: false,
      enumerable: false,
    });
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
