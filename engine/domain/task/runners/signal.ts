/**
 * `signal`: sends a signal to one execution (`target`) or to every execution waiting for it. Who gets it is
 * decided once per attempt and stored with the attempt's start (`task.started`'s input, `{ targets }`) before
 * anything is sent: a replay of the attempt (its success not stored: a crash, a lost lease) sends to those
 * again and counts them, never looking them up again. Looked up again, a target that took the signal and
 * ended since counted 0 (sig44).
 */
import { TaskFailure } from "../../../failure.ts";
import { parseJsonBytes } from "../../../json_bytes.ts";
import type { RecordedTask } from "../../../history/replay_state.ts";
import type { SignalRecipient } from "../../workflow/driver_services.ts";
import { renderField } from "../template_scope.ts";
import type { DriverPort, TaskOf, TaskRunner } from "./types.ts";

export const signalRunner: TaskRunner<TaskOf<"signal">> = {
  recordsStart: true,
  async run({ driver, task, key, execId, attempt, record, context }) {
    const payload = renderField(task.signal.payload ?? null, context, key, "signal.payload");
    const target = task.target === undefined
      ? undefined
      : executionId(renderField(task.target, context, key, "target"), key);
    let targets = recordedTargets(record);
    if (targets === undefined) {
      targets = await lookUp(driver, task.signal.id, target);
      await driver.recorded(
        driver.services.events.taskStartedStored(driver, key, execId, attempt, { targets }),
      );
    }
    await driver.track(driver.services.signals.send(driver, task.signal.id, payload, targets, execId));
    return { ok: true, output: { signal: task.signal.id, delivered: targets.length } };
  },
};

/** The executions to send to, as the state shows them now. */
async function lookUp(
  driver: DriverPort,
  signalId: string,
  target: string | undefined,
): Promise<SignalRecipient[]> {
  const signals = driver.services.signals;
  const targets = await driver.track(signals.targets(driver, signalId, target));
  // A broadcast finds waits in the compozy_waiting index, written once the state manager folds their
  // `task.waiting_started`: a wait of this very execution started a moment ago (a sibling branch) is not
  // there yet, and the signal missed it (outside review 2026-12-05 O1). This driver knows its own waits.
  if (
    target === undefined && !targets.some((t) => t.exec_id === driver.execId) &&
    driver.waitsForSignal(signalId)
  ) {
    targets.push(...await driver.track(signals.targets(driver, signalId, driver.execId)));
  }
  return targets;
}

/** The targets stored with the start of the attempt being replayed; undefined when none were (look them up). */
function recordedTargets(record: RecordedTask | undefined): SignalRecipient[] | undefined {
  if (!record?.started || record.startedInputJson === undefined) return undefined;
  const input = parseJsonBytes(record.startedInputJson) as { targets?: SignalRecipient[] } | null;
  return Array.isArray(input?.targets) ? input.targets : undefined;
}

/**
 * A rendered `target` that is an execution id: one subject token (ARCHITECTURE.md: no empty token, no `.`,
 * `*`, `>` or white space). Anything else fails the task naming it (outside review B4: `*` failed with an
 * `internal_error` "invalid key", and a target with a dot "succeeded" with `delivered: 0`).
 */
function executionId(rendered: unknown, key: string): string {
  const value = typeof rendered === "string" ? rendered : JSON.stringify(rendered) ?? String(rendered);
  if (typeof rendered === "string" && /^[^\s.*>]+$/.test(rendered)) return rendered;
  throw new TaskFailure({
    message: `task '${key}', field 'target': ${JSON.stringify(value.slice(0, 200))} is not an execution id`,
    code: "invalid_target",
    retryable: false,
    details: { task_id: key, field: "target", value: value.slice(0, 200) },
  });
}
