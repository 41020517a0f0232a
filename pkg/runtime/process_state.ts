/**
 * Process-wide state a call could change for the later calls of its warm worker, outside what
 * `global_guard.ts` resets (the own keys of `globalThis`) and `call_scope.ts` cancels (timers, fetches,
 * sockets). Found by the second red team, each by a tool whose first call changed it and whose second call
 * (same worker, same grants) saw the change:
 * - the working directory: `Deno.chdir` (a `read` grant suffices) made the next call's relative paths
 *   read another folder. A worker cannot put it back (that needs read access to the folder it started in,
 *   which a tool may not have), so changing it is refused: `NotCapable`, `tool_permission_denied`;
 * - the environment: `Deno.env.set`/`delete` of a granted name replaced the value the next call was started
 *   with (the env values are part of the pool key: that call expects its own). The value before a call's
 *   first change of a name is kept and put back when the call ends;
 * - the performance timeline: `performance.mark("m", { detail })` kept one call's data for the next call's
 *   `performance.getEntriesByType("mark")`. Marks and measures are cleared when a call ends.
 *
 * Installed before the realm is frozen (the `Deno` namespace is frozen with it); `Node`'s `process.chdir`
 * and `process.env` writes go through the same `Deno` functions.
 *
 * @module
 */

interface DenoEnv {
  get(name: string): string | undefined;
  set(name: string, value: string): void;
  delete(name: string): void;
}

/** Guards the process state of the worker; the returned function resets it at the end of each call. */
export function guardProcessState(deno: typeof Deno, perf: Performance): () => void {
  const NotCapable = deno.errors.NotCapable;
  deno.chdir = (directory: string | URL) => {
    throw new NotCapable(
      `Deno.chdir("${String(directory)}") is refused in a tool sandbox: the working directory is shared by ` +
        `every call of a warm worker; use absolute paths`,
    );
  };
  const env = deno.env as DenoEnv;
  const get = env.get.bind(env);
  const set = env.set.bind(env);
  const remove = env.delete.bind(env);
  // Name → its value before the running call first changed it (undefined: it was unset).
  const changed = new Map<string, string | undefined>();
  const remember = (name: string) => {
    // get() runs the permission check: a name the tool may not touch throws here, before anything changes.
    const before = get(name);
    if (!changed.has(name)) changed.set(name, before);
  };
  env.set = (name: string, value: string) => {
    remember(name);
    set(name, value);
  };
  env.delete = (name: string) => {
    remember(name);
    remove(name);
  };
  const clearMarks = perf.clearMarks.bind(perf);
  const clearMeasures = perf.clearMeasures.bind(perf);
  return () => {
    for (const [name, value] of changed) value === undefined ? remove(name) : set(name, value);
    changed.clear();
    clearMarks();
    clearMeasures();
  };
}

/**
 * `Atomics.waitAsync` schedules a callback no call scope can cancel (a wait cannot be withdrawn): a call
 * that re-armed one from its own callback (each with a 1 ms timeout) kept a CPU busy in its idle pooled
 * worker after it returned, letting the worker's idle check through between turns. Like the tracked timers
 * (call_scope.ts), a wait asked by code of no running call is refused and reported, which retires the
 * worker. Installed before lockdown freezes `Atomics`.
 */
export function guardWaitAsync(idle: () => boolean, onLeftover: (what: string) => void): void {
  const atomics = Atomics as unknown as { waitAsync?: (...args: unknown[]) => unknown };
  const original = atomics.waitAsync;
  if (typeof original !== "function") return;
  atomics.waitAsync = function waitAsync(...args: unknown[]) {
    if (idle()) {
      onLeftover("Atomics.waitAsync");
      throw new TypeError("Atomics.waitAsync is refused: the tool call that started this work has ended");
    }
    return original.apply(Atomics, args);
  };
}
