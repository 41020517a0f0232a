/**
 * Warm sandbox processes, pooled per key (module + permissions + env): a call takes an idle process of its
 * key, or starts one, or waits. `maxProcesses` bounds every process alive, idle or not; when it is reached
 * an idle process of another key is evicted before a call is made to wait.
 *
 * Idle processes beyond `maxWarmPerKey` are stopped only once they have been idle for `surplusIdleMs`: a
 * burst of calls needs its processes again a moment later, and stopping them at once made every burst pay
 * for new processes (a W2 run of 200 workflows in flight started and killed 4 sandboxes a second, ~0.3 s
 * of CPU each, and its calls waited ~200 ms for them).
 *
 * Fair share between keys (red team 4 F2: 16 parallel calls of one tool that only awaited a timer held
 * every process, and every other tool's calls failed `tool_timeout` waiting for one): no key holds more than
 * `maxProcesses` processes, and a key that holds none may start one beyond the bound, up to
 * `maxProcesses + reserve` in all, so a tool whose calls all hang cannot keep another tool from starting.
 * Waiters are served by key, the key served longest ago first (round robin), and oldest first within a key:
 * a released process goes to the next key in turn, and is killed to make room when that key is another. A process returns to the idle list
 * only after a call that ended normally (a result or an error thrown by the tool); one that was killed is
 * replaced in the background so the next call of its key still finds a warm process.
 *
 * @module
 */
import { ToolFailure } from "./tool_failure.ts";
import type { Death, SandboxProcess, SandboxSpec, StartOutcome } from "./sandbox_process.ts";

export interface PoolOptions {
  maxWarmPerKey: number;
  maxProcesses: number;
  /** How long a process beyond `maxWarmPerKey` stays idle before it is stopped. */
  surplusIdleMs: number;
  startTimeoutMs: number;
  /** Processes beyond `maxProcesses` kept for keys that hold none (see the module's doc). */
  reserve: number;
  /** Checks and spawns a process for a spec; may throw a ToolFailure (refused import, bad module). */
  spawn: (spec: SandboxSpec) => Promise<SandboxProcess>;
  /** Turns a failed start into the failure of the call that waited for it. */
  startFailure: (spec: SandboxSpec, outcome: StartOutcome & { ok: false }) => ToolFailure;
  /**
   * Whether the module's files changed since `process` was spawned for them. Deno reloads a file changed
   * after the worker's graph was built with the worker's own grants, which do not cover the tool's files, so
   * a save while a sandbox starts (`compozy dev --watch`) failed its load `tool_import_refused`.
   */
  changedSinceSpawn: (spec: SandboxSpec, process: SandboxProcess) => Promise<boolean>;
}

/** Starts again of a sandbox whose module changed while it loaded: a file rewritten without end still fails. */
const MAX_RELOADS = 3;

interface KeyPool {
  spec: SandboxSpec;
  idle: SandboxProcess[];
  starting: number;
  /** Processes of this key alive or being spawned, busy, idle or starting. */
  held: number;
}

/** How long a call may wait for a process: until `deadline` (`performance.now()` time), `boundMs` after it began. */
export interface SandboxWait {
  deadline: number;
  boundMs: number;
}

interface Waiter {
  key: string;
  spec: SandboxSpec;
  resolve: (process: SandboxProcess) => void;
  reject: (failure: ToolFailure) => void;
}

export interface PoolStats {
  processes: number;
  idle: number;
  busy: number;
  starting: number;
  waiting: number;
  spawned: number;
  pids: number[];
}

export class SandboxPool {
  readonly #opts: PoolOptions;
  readonly #keys = new Map<string, KeyPool>();
  readonly #live = new Map<SandboxProcess, string>();
  readonly #busy = new Set<SandboxProcess>();
  readonly #waiters: Waiter[] = [];
  readonly #idleSince = new Map<SandboxProcess, number>();
  #spawning = 0;
  #evicting = 0;
  #spawned = 0;
  #closed = false;
  /** When each key was last handed a process (a counter, not a time): the round robin's order. */
  readonly #servedAt = new Map<string, number>();
  #serves = 0;
  #trimTimer: ReturnType<typeof setTimeout> | undefined;

  constructor(opts: PoolOptions) {
    this.#opts = opts;
  }

  /**
   * A ready process of `key` for one call, marked busy. Rejects with a ToolFailure when the module cannot
   * be started, `tool_timeout` (details.phase "waiting for a sandbox") when `wait.deadline` (a
   * `performance.now()` time) passes first, or `tool_canceled` when `signal` aborts first. `wait.boundMs`
   * only names the bound in that failure (the caller sets the bound; see ToolRunner).
   */
  acquire(key: string, spec: SandboxSpec, wait: SandboxWait, signal?: AbortSignal): Promise<SandboxProcess> {
    const idle = this.#takeIdle(key);
    if (idle) return Promise.resolve(this.#served(key, idle));
    return new Promise((resolve, reject) => {
      const giveUp = (failure: ToolFailure) => {
        const at = this.#waiters.indexOf(waiter);
        if (at !== -1) this.#waiters.splice(at, 1);
        waiter.reject(failure);
      };
      const timer = setTimeout(() => {
        const message = `No sandbox for ${spec.executePath} was ready within ${wait.boundMs} ms ` +
          `(the wait for a sandbox is bounded by the larger of the sandbox start timeout and the call's timeout)`;
        giveUp(
          new ToolFailure("tool_timeout", message, {
            details: { phase: "waiting for a sandbox", waitBoundMs: wait.boundMs },
          }),
        );
      }, Math.max(0, wait.deadline - performance.now()));
      const onAbort = () =>
        giveUp(
          new ToolFailure("tool_canceled", "The call was canceled while it waited for a sandbox"),
        );
      const settled = () => (clearTimeout(timer), signal?.removeEventListener("abort", onAbort));
      const waiter: Waiter = {
        key,
        spec,
        resolve: (p) => (settled(), resolve(p)),
        reject: (f) => (settled(), reject(f)),
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      this.#waiters.push(waiter);
      this.#serve();
    });
  }

  /** Returns a process after a call. Pass `reusable: false` when the call did not end normally. */
  release(process: SandboxProcess, reusable: boolean): void {
    this.#busy.delete(process);
    const key = this.#live.get(process);
    if (key === undefined || !process.usable || !reusable || this.#closed) {
      if (process.alive) process.kill("closed");
      return;
    }
    this.#addIdle(key, process);
  }

  /**
   * Starts one process for `key` and resolves when it is ready, unless one is idle or already starting, or
   * the process limit is reached (warming never evicts).
   */
  async warm(key: string, spec: SandboxSpec): Promise<void> {
    const pool = this.#keyPool(key, spec);
    if (pool.idle.length > 0 || pool.starting > 0 || !this.#hasRoom()) return;
    const outcome = await this.#start(key, spec);
    if (!outcome.ok) throw outcome.failure;
  }

  stats(): PoolStats {
    let idle = 0;
    let starting = 0;
    for (const pool of this.#keys.values()) {
      idle += pool.idle.length;
      starting += pool.starting;
    }
    return {
      processes: this.#live.size,
      idle,
      busy: this.#busy.size,
      starting,
      waiting: this.#waiters.length,
      spawned: this.#spawned,
      pids: [...this.#live.keys()].map((p) => p.pid),
    };
  }

  /** Kills every process and fails every waiter; resolves when all processes have exited. */
  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#trimTimer);
    for (const waiter of this.#waiters.splice(0)) {
      waiter.reject(new ToolFailure("tool_crashed", "The tool runner was closed before the call started"));
    }
    const exits = [...this.#live.keys()].map((p) => (p.kill("closed"), p.exited));
    await Promise.all(exits);
  }

  #keyPool(key: string, spec: SandboxSpec): KeyPool {
    let pool = this.#keys.get(key);
    if (!pool) this.#keys.set(key, pool = { spec, idle: [], starting: 0, held: 0 });
    return pool;
  }

  #takeIdle(key: string): SandboxProcess | undefined {
    const idle = this.#keys.get(key)?.idle;
    while (idle && idle.length > 0) {
      const process = idle.pop()!;
      this.#idleSince.delete(process);
      // A process can be retired while idle (its worker reported left-over work): never hand it out.
      if (process.usable) {
        this.#busy.add(process);
        return process;
      }
    }
    return undefined;
  }

  #served(key: string, process: SandboxProcess): SandboxProcess {
    this.#servedAt.set(key, ++this.#serves);
    return process;
  }

  /** The waiters in the order they are served: by key, the key served longest ago first; oldest first within. */
  #fairOrder(): Waiter[] {
    const at = (w: Waiter) => this.#servedAt.get(w.key) ?? 0;
    return this.#waiters.map((w, i) => ({ w, i }))
      .sort((a, b) => at(a.w) - at(b.w) || a.i - b.i)
      .map(({ w }) => w);
  }

  /** Hands idle processes to waiters in fair order, and starts processes for the others while there is room. */
  #serve(): void {
    if (this.#closed) return;
    // Processes already starting for a key are spoken for by that key's first waiters.
    const comingFor = new Map<string, number>();
    for (const waiter of this.#fairOrder()) {
      const idle = this.#takeIdle(waiter.key);
      if (idle) {
        this.#waiters.splice(this.#waiters.indexOf(waiter), 1);
        waiter.resolve(this.#served(waiter.key, idle));
        continue;
      }
      const coming = comingFor.get(waiter.key) ?? this.#keys.get(waiter.key)?.starting ?? 0;
      if (coming > 0) {
        comingFor.set(waiter.key, coming - 1);
        continue;
      }
      // No room for this key: a later waiter of a key that holds no process may still start one.
      if (!this.#roomFor(waiter.key)) continue;
      comingFor.set(waiter.key, 0);
      void this.#start(waiter.key, waiter.spec).then((outcome) => {
        if (!outcome.ok) this.#failWaiters(waiter.key, outcome.failure);
      });
    }
  }

  /**
   * True when a process of `key` may be started now: under the bound, or once an idle process of another
   * key is evicted, or else beyond the bound within the reserve when the key holds no process at all (every
   * process is busy: maybe with calls that hang until their time limit).
   */
  #roomFor(key: string): boolean {
    const held = this.#keys.get(key)?.held ?? 0;
    if (held >= this.#opts.maxProcesses) return false;
    if (this.#hasRoom()) return true;
    if (this.#idleSince.size > 0 || this.#evicting > 0) return this.#makeRoom();
    return held === 0 && this.#total() < this.#opts.maxProcesses + this.#opts.reserve;
  }

  /**
   * True when a process may be started now. At the limit, evicts the longest-idle process of any key
   * (one eviction at a time) and serves the waiters again once it has exited.
   */
  #makeRoom(): boolean {
    if (this.#hasRoom()) return true;
    if (this.#evicting > 0) return false;
    // Insertion order is idle order: a process leaves the map whenever it is taken.
    const victim = this.#idleSince.keys().next().value;
    if (!victim) return false;
    this.#removeIdle(victim);
    this.#evicting++;
    victim.kill("closed");
    victim.exited.then(() => {
      this.#evicting--;
      this.#serve();
    });
    return false;
  }

  /** A process of this key failed to start: the calls waiting for one would fail the same way. */
  #failWaiters(key: string, failure: ToolFailure): void {
    for (const waiter of this.#waiters.filter((w) => w.key === key)) {
      this.#waiters.splice(this.#waiters.indexOf(waiter), 1);
      waiter.reject(failure);
    }
    this.#serve();
  }

  #total(): number {
    return this.#live.size + this.#spawning;
  }

  #hasRoom(): boolean {
    return this.#total() < this.#opts.maxProcesses;
  }

  #removeIdle(process: SandboxProcess): void {
    const key = this.#live.get(process);
    const idle = key === undefined ? undefined : this.#keys.get(key)?.idle;
    const at = idle?.indexOf(process) ?? -1;
    if (at !== -1) idle!.splice(at, 1);
    this.#idleSince.delete(process);
  }

  #addIdle(key: string, process: SandboxProcess): void {
    this.#keys.get(key)!.idle.push(process);
    this.#idleSince.set(process, performance.now());
    this.#serve();
    this.#trimIdle(key);
  }

  /** Stops the longest-idle processes beyond `maxWarmPerKey` that have been idle for `surplusIdleMs`. */
  #trimIdle(key: string): void {
    const idle = this.#keys.get(key)?.idle;
    const now = performance.now();
    while (idle && idle.length > this.#opts.maxWarmPerKey) {
      const since = this.#idleSince.get(idle[0]) ?? now;
      if (now - since < this.#opts.surplusIdleMs) {
        return this.#trimLater(since + this.#opts.surplusIdleMs - now);
      }
      const oldest = idle.shift()!;
      this.#idleSince.delete(oldest);
      oldest.kill("closed");
    }
  }

  #trimLater(ms: number): void {
    if (this.#trimTimer !== undefined || this.#closed) return;
    this.#trimTimer = setTimeout(() => {
      this.#trimTimer = undefined;
      for (const key of [...this.#keys.keys()]) this.#trimIdle(key);
    }, Math.max(0, ms));
    // Trimming alone must not keep the runtime alive.
    Deno.unrefTimer(this.#trimTimer);
  }

  /** Starts a process; when ready it serves the oldest waiter of its key or joins the idle list. */
  async #start(
    key: string,
    spec: SandboxSpec,
    reloads = 0,
  ): Promise<{ ok: true } | { ok: false; failure: ToolFailure }> {
    const pool = this.#keyPool(key, spec);
    pool.starting++;
    pool.held++;
    this.#spawning++;
    let process: SandboxProcess;
    try {
      process = await this.#opts.spawn(spec);
    } catch (e) {
      pool.starting--;
      pool.held--;
      return {
        ok: false,
        failure: e instanceof ToolFailure ? e : new ToolFailure("tool_crashed", String(e)),
      };
    } finally {
      this.#spawning--;
    }
    this.#spawned++;
    this.#live.set(process, key);
    process.exited.then((death) => this.#onExit(process, death));
    const timer = setTimeout(
      () => process.kill("timeout", `not ready after ${this.#opts.startTimeoutMs} ms`),
      this.#opts.startTimeoutMs,
    );
    const outcome = await process.ready;
    clearTimeout(timer);
    pool.starting--;
    if (!outcome.ok) {
      process.kill("closed");
      // The load failed on a module saved meanwhile: a fresh check and process load the saved one.
      if (!this.#closed && reloads < MAX_RELOADS && await this.#opts.changedSinceSpawn(spec, process)) {
        return this.#start(key, spec, reloads + 1);
      }
      return { ok: false, failure: this.#opts.startFailure(spec, outcome) };
    }
    if (this.#closed) {
      process.kill("closed");
      return { ok: true };
    }
    this.#addIdle(key, process);
    return { ok: true };
  }

  #onExit(process: SandboxProcess, death: Death): void {
    const key = this.#live.get(process)!;
    this.#live.delete(process);
    this.#removeIdle(process);
    this.#busy.delete(process);
    const pool = this.#keys.get(key)!;
    pool.held--;
    // A call's process was killed (time-out, memory) or crashed: keep a warm replacement for the key's
    // next call. Never for a process that did not get as far as a call: its module may never load.
    const refill = !this.#closed && death.reason !== "closed" && process.calls > 0 &&
      pool.idle.length + pool.starting === 0 && this.#hasRoom();
    if (refill) void this.#start(key, pool.spec);
    const used = pool.idle.length + pool.starting > 0 || [...this.#live.values()].includes(key) ||
      this.#waiters.some((w) => w.key === key);
    if (!used) {
      this.#keys.delete(key);
      this.#servedAt.delete(key);
    }
    this.#serve();
  }
}
