/** What the driver decides from records and wake-ups: pure helpers, kept beside it. */
import { getLogger } from "../../../pkg/logger/mod.ts";
import { fromErrorInfo } from "../../failure.ts";
import type { RecordedTask } from "../../history/replay_state.ts";
import type { Outcome, Waiter } from "../task/runners/mod.ts";
import type { TaskConfig } from "../task/schema.ts";

const log = getLogger(["engine", "driver"]);

export function recordedOutcome(task: TaskConfig, record: RecordedTask | undefined): Outcome | undefined {
  if (!record) return undefined;
  if (record.status === "success" || record.status === "skipped") {
    return {
      ok: true,
      output: record.output ?? null,
      skipped: record.status === "skipped",
      ...(record.route !== undefined ? { routeName: record.route } : {}),
    };
  }
  if (record.status === "failed") {
    const failure = fromErrorInfo(record.error);
    // A wait that timed out goes on at its `on_timeout`, on every replay as on the first run.
    const next = task.type === "wait" && failure.code === "wait_timeout" ? task.on_timeout : undefined;
    return { ok: false, failure, next };
  }
  return undefined;
}

/** A task's record shows it waiting (or woken from a wait whose outcome is not recorded yet). */
export function isWaiting(record: RecordedTask | undefined): boolean {
  return record?.status === "waiting" || record?.status === "woken" || record?.status === "wait_timed_out";
}

/** A wake-up meant for an earlier attempt of the task, or for a sub-workflow it no longer waits for. */
export function stale(waiter: Waiter, reason: string, payload: unknown): boolean {
  if (reason === "timeout" && waiter.kind !== "signal") return true;
  // A back-off's timer wakes only its back-off: it may come once the replay has started the next attempt
  // (its due time passed), whose own wait (a sleep, a child) it must not end.
  if ((reason === "retry") !== (waiter.kind === "backoff")) return true;
  const p = payload as { attempt?: number; exec_id?: string } | null;
  if (reason === "child") return !!p?.exec_id && !!waiter.childExecId && p.exec_id !== waiter.childExecId;
  return p?.attempt !== undefined && p.attempt !== waiter.attempt;
}

export function anySignal(a: AbortSignal | undefined, b: AbortSignal): AbortSignal {
  return a ? AbortSignal.any([a, b]) : b;
}

/** `promise`, or a rejection with the abort's reason as soon as `abort` fires. */
export function abortable<T>(promise: Promise<T>, abort: AbortSignal | undefined): Promise<T> {
  if (!abort) return promise;
  if (abort.aborted) {
    promise.catch((e) => log.debug("a given-up call ended: {error}", { error: String(e) }));
    return Promise.reject(abort.reason);
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => {
      reject(abort.reason);
      // Given up: the I/O goes on; its outcome is ignored (logged when it fails).
      promise.catch((e) => log.debug("a given-up call ended: {error}", { error: String(e) }));
    };
    abort.addEventListener("abort", onAbort, { once: true });
    promise.then(resolve, reject).finally(() => abort.removeEventListener("abort", onAbort));
  });
}
