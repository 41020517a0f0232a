/**
 * Reading back the histories of the executions an e2e test started, once they ended. The processes under
 * test may still be failing over (a cluster electing a stream leader, a killed process's consumers going
 * away): a read that times out then is the test's own read failing, not the executions' liveness, so it is
 * tried again until its bound, and any other error is thrown at once.
 */
import type { ExecutionClient } from "../../../engine/mod.ts";
import type { EventRecord } from "../../../engine/state/execution_state.ts";

/** Per execution: its events in stream order, read with `client.events`. */
export type Histories = Map<string, EventRecord[]>;

/**
 * Each execution's history, read one after the other; each read retried for up to `perReadMs` while it
 * times out (then its last error is thrown).
 *
 * @example
 * ```ts ignore
 * const histories = await readHistories(client, ids);
 * const starts = histories.get(ids[0])!.filter((e) => e.type === "tool.started").length;
 * ```
 */
export async function readHistories(
  client: ExecutionClient,
  ids: readonly string[],
  perReadMs = 30_000,
): Promise<Histories> {
  const histories: Histories = new Map();
  for (const id of ids) {
    histories.set(id, await untilDeadline(() => client.events(id), Date.now() + perReadMs));
  }
  return histories;
}

/** `fn` again while it throws a time-out and the deadline is not passed; other errors are thrown at once. */
async function untilDeadline<T>(fn: () => Promise<T>, deadline: number): Promise<T> {
  while (true) {
    try {
      return await fn();
    } catch (e) {
      if (Date.now() > deadline || !(e instanceof Error) || !/timeout/i.test(`${e.name} ${e.message}`)) {
        throw e;
      }
      console.log(`history read timed out (${e.message}); retrying`);
      await new Promise((r) => setTimeout(r, 500));
    }
  }
}
