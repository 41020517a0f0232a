/**
 * What a benchmark started must not outlive it: `compozy start` processes run in their own process groups
 * (setsid) and nats-servers are plain children, so neither dies with an interrupted `deno task bench`. A
 * benchmark registers a clean-up for what it started; on SIGINT or SIGTERM every registered clean-up runs,
 * then the process exits (130 or 143). A second signal during the clean-up exits at once.
 */

type Cleanup = () => Promise<void>;

const cleanups = new Set<Cleanup>();
const SIGNALS = [["SIGINT", 130], ["SIGTERM", 143]] as const;
const listeners = new Map<Deno.Signal, () => void>();
let cleaning = false;

/** Runs `cleanup` if the process is interrupted before the returned function is called. */
export function onInterrupt(cleanup: Cleanup): () => void {
  cleanups.add(cleanup);
  if (listeners.size === 0) {
    for (const [signal, code] of SIGNALS) {
      const listener = () => interrupted(signal, code);
      listeners.set(signal, listener);
      Deno.addSignalListener(signal, listener);
    }
  }
  return () => {
    cleanups.delete(cleanup);
    // No listener left behind: it would keep the process alive after the last benchmark.
    if (cleanups.size > 0 || cleaning) return;
    for (const [signal, listener] of listeners) Deno.removeSignalListener(signal, listener);
    listeners.clear();
  };
}

function interrupted(signal: Deno.Signal, code: number): void {
  if (cleaning) Deno.exit(code);
  cleaning = true;
  console.error(`bench: ${signal}: stopping the processes it started (again to exit at once)`);
  Promise.allSettled([...cleanups].map((cleanup) => cleanup())).then((results) => {
    for (const result of results) {
      if (result.status === "rejected") console.error(`bench: a clean-up failed: ${result.reason}`);
    }
    Deno.exit(code);
  });
}
