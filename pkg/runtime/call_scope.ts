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
 *   the worker; so are Deno's connections, listeners, servers and files (file watchers are refused in the
 *   worker, tool_worker.ts).
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
const originalSetTimeout = setTimeout;
const originalClearTimeout = clearTimeout;
const { BadResource } = Deno.errors;
const { defineProperty, construct, ownKeys, getPrototypeOf, setPrototypeOf } = Reflect;
const { getOwnPropertyDescriptor } = Object;
// The context's methods, called on it by these references only: Node's prototype stays open to a call (its
// properties are put back after it, node_guard.ts), and a `getStore` or `run` a call put there was called by
// the sandbox with its own context as `this`. The call kept that context and ran a reaction in none (the
// sandbox's own, let run at any time) during the next call of the warm process (outside break attempt brk44);
// `disable()` on it would have left every later call's logs unattributed.
const { getStore: contextStore, run: contextRun } = AsyncLocalStorage.prototype;
const { apply } = Reflect;

/** The options of `navigator.locks.request` this module reads. */
interface LockRequestOptions {
  steal?: boolean;
  ifAvailable?: boolean;
  signal?: AbortSignal;
}

/** How long the return of a call may wait for what it opened to close (a server's shutdown). */
const CLOSE_WAIT_MS = 1_000;

/** The phase of the module's load, before any call. */
export const LOAD_PHASE = -1;
/** No phase: between calls. */
const IDLE = 0;

type TimerHandle = unknown;
type Scheduler = (callback: unknown, ...rest: unknown[]) => TimerHandle;
type Canceller = (handle: TimerHandle) => void;

/** The classes of `node:net` that open sockets; every connection of the Node layer goes through these. */
export interface NodeNet {
  Socket: { prototype: { connect: unknown; destroy: unknown; setTimeout: unknown } };
  Server: { prototype: { listen: unknown; close: unknown } };
}

/** The UDP socket class of `node:dgram` (it does not use `node:net`); `send` binds through `bind`. */
export interface NodeDgram {
  Socket: { prototype: { bind: unknown; close: unknown } };
}

/** Closes one resource a call opened; a promise when the close completes later (a server's shutdown). */
type Closer = () => unknown;

/** How a resource an opener returns is closed; `keptFromLoad`: one opened by the module's load stays open. */
interface Opener {
  method: string;
  async: boolean;
  keptFromLoad?: boolean;
}

/**
 * Deno's functions that open connections, listeners and servers, each with how its result is closed (the
 * method is read from the result's prototype, which is frozen before the result reaches the tool).
 */
const DENO_OPENERS: Record<string, Opener> = {
  connect: { method: "close", async: true },
  connectTls: { method: "close", async: true },
  startTls: { method: "close", async: true },
  connectQuic: { method: "close", async: true },
  listen: { method: "close", async: false },
  listenTls: { method: "close", async: false },
  listenDatagram: { method: "close", async: false },
  serve: { method: "shutdown", async: false },
  // Files: left open, a call's file stayed readable and writable by the same tool's later calls (of other
  // executions); each leak also held one of the process's descriptors for good. One the module's load opens
  // is the module's, kept for every call like the rest of its state (a data file opened once).
  open: { method: "close", async: true, keptFromLoad: true },
  openSync: { method: "close", async: false, keptFromLoad: true },
  create: { method: "close", async: true, keptFromLoad: true },
  createSync: { method: "close", async: false, keptFromLoad: true },
};

/** The web classes that hold a connection or a channel open after their constructor returns. */
const OPEN_CLASSES = ["WebSocket", "WebSocketStream", "EventSource", "BroadcastChannel"];

interface TimerGlobals {
  setTimeout: Scheduler;
  setInterval: Scheduler;
  clearTimeout: Canceller;
  clearInterval: Canceller;
  setImmediate?: Scheduler;
  clearImmediate?: Canceller;
  fetch: typeof fetch;
  AbortSignal?: { timeout: (ms: number) => AbortSignal };
}

type ResolveDns = (
  query: string,
  recordType: string,
  options?: { signal?: AbortSignal; nameServer?: { ipAddr: string; port?: number } },
) => Promise<unknown>;

/** The largest delay a timer takes as given; a larger one fires at once (it is clamped to 1 ms). */
const MAX_TIMER_MS = 2 ** 31 - 1;

export class CallScope {
  readonly #context = new AsyncLocalStorage<number>();
  readonly #onLeftover: (what: string) => void;
  readonly #timers = new Map<TimerHandle, Canceller>();
  readonly #fetches = new Set<AbortController>();
  /** Open sockets and servers of the phase, with how to close each and how to tell it stayed open. */
  readonly #sockets = new Map<object, { close: () => unknown; open: () => boolean; what: string }>();
  readonly #freezeShape: (resource: object) => void;
  #phase = LOAD_PHASE;
  /** Whether the last {@linkcode end} aborted a fetch or closed a connection (see {@linkcode endedWork}). */
  #endedWork = false;
  /** Whether the tool's code ran between calls since the last reset (see {@linkcode ranBetweenCalls}). */
  #ranBetweenCalls = false;
  /** The worker's first call: the only one during which code of the module's load may still run. */
  #firstCall: number | undefined;

  /**
   * `onLeftover` hears of each tracked API that code of an ended call tried to use; `freezeShape` freezes
   * the prototypes of a resource before the tool gets it, so the close method read from them is the real one.
   */
  constructor(onLeftover: (what: string) => void, freezeShape: (resource: object) => void) {
    this.#onLeftover = onLeftover;
    this.#freezeShape = freezeShape;
  }

  /**
   * The phase the running code belongs to: the running call's id, `LOAD_PHASE` while the module loads,
   * or 0 when it belongs to no running phase (work left by an ended call, or code outside any call).
   */
  current(): number {
    const owner = apply(contextStore, this.#context, []);
    if (this.#phase === LOAD_PHASE) return owner === undefined || owner === LOAD_PHASE ? LOAD_PHASE : IDLE;
    return owner !== undefined && owner === this.#phase ? owner : IDLE;
  }

  /** The phase the running code was started by (its context), whether or not that phase still runs. */
  owner(): number | undefined {
    return apply(contextStore, this.#context, []);
  }

  /** The running phase: a call's id, `LOAD_PHASE`, or 0 between calls. */
  get phase(): number {
    return this.#phase;
  }

  /** True while call `id` runs. */
  isRunning(id: number): boolean {
    return id > 0 && id === this.#phase;
  }

  /** Runs `fn` as call `id`: what it schedules belongs to that call. */
  run<T>(id: number, fn: () => T): T {
    this.#phase = id;
    this.#firstCall ??= id;
    return apply(contextRun, this.#context, [id, fn]) as T;
  }

  /**
   * Runs `fn`, the host's handling of call `id`, in that call's context without starting the call: what
   * the host's own steps make the tool's code do (a `toJSON` of the output, an abort listener called as
   * the call's fetches are aborted) belongs to that call too, never to no call.
   */
  within<T>(id: number, fn: () => T): T {
    return apply(contextRun, this.#context, [id, fn]) as T;
  }

  /**
   * True when code that belongs to an ended call is about to run while another call runs: it was started
   * by a call (its context holds that call's id) and that call is not the running one. Code of no call (the
   * module's load, the sandbox's own) is not counted: it holds no call's data.
   */
  lateCodeRunning(): boolean {
    const owner = apply(contextStore, this.#context, []);
    if (this.#phase <= 0) {
      this.noteBetweenCalls(owner);
      return false;
    }
    if (owner === LOAD_PHASE) return this.#phase !== this.#firstCall;
    return owner !== undefined && owner > 0 && owner !== this.#phase;
  }

  /**
   * Notes code started by phase `owner` about to run: between calls the tool's code may run, but is noted,
   * an ended call's, or the load's once a call has run (before the first call, what the load's code does is
   * part of the load).
   */
  noteBetweenCalls(owner: number | undefined): void {
    if (this.#phase === IDLE && owner !== undefined && (owner > 0 || this.#firstCall !== undefined)) {
      this.#ranBetweenCalls = true;
    }
  }

  /**
   * True when code of the tool (an ended call's, or the load's) ran while no call did since the last
   * {@linkcode settle}: after a call's reset, a reaction it left (a `.then` chain, an I/O completion, a
   * microtask) may change what the reset put back, for the next call.
   */
  ranBetweenCalls(): boolean {
    return this.#ranBetweenCalls;
  }

  /**
   * Whether the last {@linkcode end} aborted a fetch or closed a connection: the reactions the call had on
   * them (a read loop's end, an aborted request's rejection) are still to run, in the call's context.
   */
  get endedWork(): boolean {
    return this.#endedWork;
  }

  /** Marks the worker's state as reset: what the tool's code ran before is no longer of interest. */
  settle(): void {
    this.#ranBetweenCalls = false;
  }

  /**
   * `queueMicrotask` whose callback runs as a promise reaction, in the context of the code that queued it:
   * V8 runs a queued microtask without the promise hook, so a chain of them an ended call left ran unseen
   * after its reset (break attempt brk39: it replaced `atob` for the next call). An error the callback
   * throws is reported as an uncaught error, as V8's own queue does.
   */
  queueMicrotaskAsReaction(report: (error: unknown) => void): (callback: () => void) => void {
    const resolved = Promise.resolve();
    const then = Promise.prototype.then;
    return function queueMicrotask(callback: () => void): void {
      if (typeof callback !== "function") {
        throw new TypeError("Failed to execute 'queueMicrotask': Argument 1 is not a function");
      }
      then.call(resolved, () => {
        try {
          callback();
        } catch (e) {
          report(e);
        }
      });
    };
  }

  /**
   * Evaluates the tool module (`load` imports it) in a context of its own, apart from the sandbox's: code
   * the load scheduled, or that a call later ran in the load's context (a reaction the load registered on
   * a promise a call resolves, an `AsyncLocalStorage.snapshot()` taken at load), is known as the load's
   * wherever it runs, and is not let run during a call after the first.
   */
  load<T>(load: () => T): T {
    return apply(contextRun, this.#context, [LOAD_PHASE, load]) as T;
  }

  /**
   * Ends the current phase: cancels every timer, interval, immediate and fetch it started and closes what
   * it opened. Returns a promise only when a close is asynchronous (a `Deno.serve` server shuts down, a
   * TLS connection flushes): it settles once those closes have, or after {@linkcode CLOSE_WAIT_MS}, when
   * the one still closing is reported as left-over work.
   */
  end(): Promise<void> | undefined {
    this.#phase = IDLE;
    this.#endedWork = this.#fetches.size > 0 || this.#sockets.size > 0;
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
    const closing: Promise<unknown>[] = [];
    for (const socket of sockets) {
      let closed: unknown;
      try {
        closed = socket.close();
      } catch (e) {
        this.#onLeftover(`${socket.what}, which failed to close: ${String(e)}`);
        return;
      }
      if (socket.open()) {
        this.#onLeftover(`${socket.what}, which stayed open`);
        return;
      }
      if (closed instanceof Promise) closing.push(closed.then(() => socket.what));
    }
    return closing.length === 0 ? undefined : this.#awaitClosing(closing);
  }

  async #awaitClosing(closing: Promise<unknown>[]): Promise<void> {
    const settled = new Set<unknown>();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise<void>((resolve) => (timer = originalSetTimeout(resolve, CLOSE_WAIT_MS)));
    await Promise.race([Promise.all(closing.map((c) => c.then((what) => settled.add(what)))), late]);
    originalClearTimeout(timer);
    if (settled.size < closing.length) {
      this.#onLeftover(`a connection that did not close within ${CLOSE_WAIT_MS} ms`);
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
    const socket = {
      close: (socket: object) => destroy.call(socket),
      open: (socket: object) => (socket as { destroyed?: unknown }).destroyed !== true,
    };
    this.#trackOpen(net.Socket.prototype, "connect", "a node:net socket", socket);
    // A socket's time-out is a timer of Node's own, not the global one a call's end clears: set on a socket
    // never connected, it fired in a later call (red team 3, H3 follow-up). Destroying it clears the timer.
    this.#trackOpen(net.Socket.prototype, "setTimeout", "a node:net socket's time-out", socket);
    this.#trackOpen(net.Server.prototype, "listen", "a node:net server", {
      close: (server) => close.call(server),
      open: (server) => (server as { listening?: unknown }).listening === true,
    });
  }

  /** Tracks UDP sockets of `node:dgram` like those of `node:net`: `bind` opens them (`send` calls it). */
  installDatagrams(dgram: NodeDgram): void {
    const close = dgram.Socket.prototype.close as (this: object) => void;
    this.#trackOpen(dgram.Socket.prototype, "bind", "a node:dgram socket", {
      close: (socket) => {
        try {
          close.call(socket);
        } catch (e) {
          // Closed by the tool already: nothing left open.
          if ((e as { code?: unknown }).code !== "ERR_SOCKET_DGRAM_NOT_RUNNING") throw e;
        }
      },
      open: () => false,
    });
  }

  /**
   * Tracks what Deno's own APIs open: `Deno.connect`, `connectTls`, `startTls`, `listen`, `listenTls`,
   * `listenDatagram`, `serve` and the files of `Deno.open`/`create` (and their `Sync` forms), on `deno`, the
   * `Deno` namespace, before it is frozen;
   * and the `WebSocket`, `EventSource` and `BroadcastChannel` objects (on `globals`). Each is closed when
   * the call that opened it returns; one that a call's pending open yields after the call ended is closed
   * at once; a file the module's load opened stays open.
   */
  installHostNet(deno: Record<string, unknown>, globals: Record<string, unknown>): void {
    for (const [name, how] of Object.entries(DENO_OPENERS)) {
      const original = deno[name];
      if (typeof original !== "function") continue;
      deno[name] = this.#trackOpener(original as (...args: unknown[]) => unknown, `Deno.${name}`, how);
    }
    if (typeof deno.resolveDns === "function") {
      deno.resolveDns = this.#trackQuery(deno.resolveDns as ResolveDns);
    }
    for (const name of OPEN_CLASSES) {
      const descriptor = getOwnPropertyDescriptor(globals, name);
      if (descriptor === undefined) continue;
      // A lazy global builds its class on this read.
      const original = globals[name];
      if (typeof original !== "function") continue;
      defineProperty(globals, name, {
        value: this.#trackClass(original as new (...args: unknown[]) => object, name),
        writable: true,
        configurable: true,
        enumerable: descriptor.enumerable ?? false,
      });
    }
  }

  /** Holds `resource` for the phase `owner` that opened it; closes it at once if that phase has ended. */
  #hold(owner: number, resource: object, what: string, close: Closer): void {
    this.#freezeShape(resource);
    if (owner !== this.#phase) return void close();
    this.#sockets.set(resource, { close, open: () => false, what });
  }

  #trackOpener(
    original: (...args: unknown[]) => unknown,
    what: string,
    how: Opener,
  ): (...args: unknown[]) => unknown {
    // The close method is read when the resource is opened, before the tool holds it: it cannot be replaced.
    const closer = (resource: object): Closer => {
      const close = (resource as Record<string, unknown>)[how.method];
      if (typeof close !== "function") throw new TypeError(`${what} returned a value without ${how.method}`);
      return () => {
        let closed: unknown;
        try {
          closed = close.call(resource);
        } catch (e) {
          // Closed by the tool already (a file, a connection): nothing left open.
          if (e instanceof BadResource) return;
          throw e;
        }
        // A rejected shutdown is a server that was already shut down.
        return closed instanceof Promise ? closed.catch(() => {}) : undefined;
      };
    };
    return (...args: unknown[]) => {
      this.#admit(what);
      const owner = this.current();
      const opened = original(...args);
      const hold = (resource: object) => {
        if (how.keptFromLoad && owner === LOAD_PHASE) return this.#freezeShape(resource);
        this.#hold(owner, resource, what, closer(resource));
      };
      if (!how.async) {
        hold(opened as object);
        return opened;
      }
      return (opened as Promise<object>).then((resource) => {
        hold(resource);
        return resource;
      });
    };
  }

  /**
   * A stand-in for a web class: constructs the original (subclasses work: `new.target` is passed on) and
   * holds the instance. The original prototype's `constructor` points to the stand-in, so the original
   * constructor is not reachable from an instance.
   */
  #trackClass(original: new (...args: unknown[]) => object, name: string): unknown {
    const close = original.prototype.close as (this: object) => void;
    const what = `a ${name}`;
    const hold = (instance: object) =>
      this.#hold(this.current(), instance, what, () => {
        // A closed channel or socket may throw on a second close: it is closed either way.
        try {
          close.call(instance);
        } catch (e) {
          if (!(e instanceof DOMExceptionClass)) throw e;
        }
      });
    const admit = (name: string) => this.#admit(name);
    const Tracked = function (this: unknown, ...args: unknown[]) {
      if (new.target === undefined) {
        throw new TypeError(`Failed to construct '${name}': use the 'new' operator`);
      }
      admit(what);
      const instance = construct(original, args, new.target);
      hold(instance);
      return instance;
    };
    for (const key of ownKeys(original)) {
      if (key === "prototype") continue;
      defineProperty(Tracked, key, getOwnPropertyDescriptor(original, key)!);
    }
    defineProperty(Tracked, "prototype", { value: original.prototype, writable: false });
    defineProperty(original.prototype, "constructor", {
      value: Tracked,
      writable: true,
      configurable: true,
      enumerable: false,
    });
    setPrototypeOf(Tracked, getPrototypeOf(original));
    return Tracked;
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
    const tracked = function (this: object, ...args: unknown[]) {
      admit(what);
      sockets.set(this, { close: () => how.close(this), open: () => how.open(this), what });
      return original.apply(this, args);
    };
    // An accessor, not a read-only value: a read-only method of a prototype makes assigning the same name
    // on anything inheriting it throw (JavaScript's "override mistake"), and a built-in loaded after this
    // (node:http and node:https reached by process.getBuiltinModule) sets its subclass's own `listen` so.
    // The prototype's own method stays unreplaceable; an assignment on an heir defines the heir's own.
    defineProperty(proto, method, {
      get: () => tracked,
      set(this: object, value: unknown) {
        if (this === proto) throw new TypeError(`Cannot replace ${what}'s ${method} in a tool sandbox`);
        defineProperty(this, method, { value, writable: true, configurable: true, enumerable: true });
      },
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
    if (scope.AbortSignal) scope.AbortSignal.timeout = this.#signalTimeout(scope.setTimeout);
  }

  /**
   * `AbortSignal.timeout` on the tracked `setTimeout`: Deno's runs its own timer, which no call scope saw,
   * so an abort listener of an ended call ran during a later one (red team 3 H3). Now the timer is refused
   * to code of an ended call and cancelled when the call ends (its signal then never aborts).
   */
  #signalTimeout(setTimer: Scheduler): (ms: number) => AbortSignal {
    return function timeout(ms: number): AbortSignal {
      const delay = Number(ms);
      if (!Number.isFinite(delay) || delay < 0 || delay > Number.MAX_SAFE_INTEGER) {
        throw new TypeError(`AbortSignal.timeout: ${String(ms)} is not a delay in milliseconds`);
      }
      const controller = new AbortControllerClass();
      const abort = () => controller.abort(new DOMExceptionClass("Signal timed out.", "TimeoutError"));
      // Beyond a timer's range the signal would abort only after some 24 days: longer than any call.
      if (delay <= MAX_TIMER_MS) setTimer(abort, Math.trunc(delay));
      return controller.signal;
    };
  }

  /**
   * Web Locks (`navigator.locks`): a lock a call holds is released when the call ends, and a request still
   * waiting is withdrawn. A callback that never settles held its lock past its call: a later call of
   * another execution found it taken ("held by A") and waited on it until its time limit. The callback's
   * promise is raced with the end of the phase; the request is replaced on the manager's prototype, neither
   * writable nor configurable, before the realm is frozen.
   */
  installLocks(manager: object | undefined): void {
    if (manager === undefined) return;
    const prototype = getPrototypeOf(manager) as Record<string, unknown>;
    const request = prototype.request as (...args: unknown[]) => Promise<unknown>;
    const fetches = this.#fetches;
    const admit = (what: string) => this.#admit(what);
    defineProperty(prototype, "request", {
      value: function (this: object, name: unknown, options: unknown, callback?: unknown) {
        admit("navigator.locks.request");
        const opts = (typeof options === "function" ? {} : options ?? {}) as LockRequestOptions;
        const granted = (typeof options === "function" ? options : callback) as (lock: unknown) => unknown;
        if (typeof granted !== "function") return request.call(this, name, options, callback);
        const controller = new AbortControllerClass();
        fetches.add(controller);
        const ended = new Promise((resolve) => controller.signal.addEventListener("abort", resolve));
        // A signal cannot go with `steal` or `ifAvailable` (the request is answered at once then).
        const signal = opts.steal || opts.ifAvailable
          ? opts.signal
          : opts.signal
          ? anySignal([opts.signal, controller.signal])
          : controller.signal;
        return request.call(
          this,
          name,
          { ...opts, signal },
          (lock: unknown) => Promise.race([granted(lock), ended]),
        )
          .finally(() => fetches.delete(controller));
      },
      writable: false,
      configurable: false,
    });
  }

  /**
   * A `PerformanceObserver` a call started observing is disconnected when the call ends. Its callback is
   * queued by the platform when entries arrive, in the context of the code that made them: an observer of
   * one execution's call saw a later execution's `performance.mark` names, and its console lines were
   * delivered under the later call's ids. `observe` is replaced on the class's prototype, neither writable
   * nor configurable, so Node's subclass (`node:perf_hooks`, which extends the original class rather than
   * the global) is held too.
   */
  installObservers(Observer: { prototype: object } | undefined): void {
    if (Observer === undefined) return;
    const prototype = Observer.prototype as Record<string, (this: object, ...args: unknown[]) => unknown>;
    const observe = prototype.observe;
    const disconnect = prototype.disconnect;
    const admit = (what: string) => this.#admit(what);
    const hold = (observer: object) =>
      this.#hold(this.current(), observer, "a PerformanceObserver", () => disconnect.call(observer));
    defineProperty(prototype, "observe", {
      value: function (this: object, ...args: unknown[]) {
        admit("PerformanceObserver.observe");
        hold(this);
        return observe.apply(this, args);
      },
      writable: false,
      configurable: false,
    });
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

  /**
   * `Deno.resolveDns`, aborted like a fetch when its call returns and refused to an ended call's code: a
   * chain of queries a call left went on from the idle pooled process, to any server its grant reaches, with
   * names holding the call's data, for as long as the process lived (outside break attempt brk44).
   */
  #trackQuery(original: ResolveDns): ResolveDns {
    const fetches = this.#fetches;
    return (query, recordType, options) => {
      this.#admit("Deno.resolveDns");
      const controller = new AbortControllerClass();
      const own = options?.signal;
      const signal = own ? anySignal([own, controller.signal]) : controller.signal;
      fetches.add(controller);
      return original(query, recordType, { ...options, signal }).finally(() => fetches.delete(controller));
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
