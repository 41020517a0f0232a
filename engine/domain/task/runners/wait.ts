/**
 * `wait`: waits durably for a signal its `condition` accepts; its `timeout` is how long it waits, and a
 * time-out goes on at `on_timeout` (recorded as a failure with code `wait_timeout`).
 */
import { TaskFailure } from "../../../failure.ts";
import { parseDuration } from "../../duration.ts";
import type { TaskOf, TaskRunner } from "./types.ts";

export const waitRunner: TaskRunner<TaskOf<"wait">> = {
  // Its `timeout` is how long it waits (a durable timer of its own), not a bound on an attempt.
  ownsTimeout: () => true,
  async run({ driver, task, key, execId, attempt, scope, record, context }) {
    if (record?.status === "woken") return { ok: true, output: record.wakePayload ?? null };
    const recorded = record?.status === "waiting" || record?.status === "wait_timed_out";
    if (!recorded) {
      const due = task.timeout ? Date.now() + parseDuration(task.timeout) : 0;
      // The time-out is stored before the wait is recorded: a recorded wait always has its wake-up. The wait
      // counts as starting from before both (startSignalWait): a signal that reached the driver while the
      // time-out was being stored found no wait and was dropped, and the wait waited its whole time-out.
      const recordStart = async () => {
        if (due) await driver.services.timers.schedule(driver, key, execId, "timeout", due, attempt);
        await driver.services.events.waitingStarted(driver, key, execId, attempt, task.signal, due);
      };
      await driver.startSignalWait(execId, task.signal, recordStart());
    }
    // A wait already recorded waits for the signal its record names: a reload that renamed `signal:` since
    // would leave it listening for a signal the API does not count it waiting for (and dropping the one it does).
    const signalId = (recorded && record.waitingFor) || task.signal;
    const woken = record?.status === "wait_timed_out"
      ? { reason: "timeout", payload: null }
      : await driver.waitFor(
        execId,
        {
          kind: "signal",
          signalId,
          taskId: key,
          condition: task.condition,
          env: context.env as Record<string, string>,
          attempt,
          scope,
          timed: Boolean(task.timeout),
        },
      );
    if (woken.reason === "timeout") {
      // `retry` applies to a wait too (docs/engine.md; outside review B9): with attempts left, the time-out is
      // retried (the driver schedules the back-off, then the wait waits again); after the last, `on_timeout`.
      if (attempt < (task.retry?.max_attempts ?? 1)) throw waitTimeout(signalId, key);
      return { ok: false, failure: waitTimeout(signalId, key), next: task.on_timeout };
    }
    return { ok: true, output: woken.payload };
  },
};

export function waitTimeout(signalId: string, key: string): TaskFailure {
  return new TaskFailure({
    message: `wait '${key}' timed out waiting for signal '${signalId}'`,
    code: "wait_timeout",
    // Like every time-out (docs/engine.md): `retry` retries it.
    retryable: true,
  });
}
