/**
 * A task that was under way before a replay, whose branch is given up before the replay reaches it: the
 * time-out of a container around it, overdue when the parked execution is replayed, fires while the container
 * replays its earlier children (outside review E5: a composite's time-out left the sub-workflow inside it
 * running to SUCCESS after its parent's end, with no `task.canceled` for its task). It ends as it would have
 * live: what it started is stopped (its sub-workflow canceled, a container's open children given up the same
 * way) and it is recorded canceled.
 */
import { getLogger } from "../../../pkg/logger/mod.ts";
import type { RecordedTask } from "../../history/replay_state.ts";
import { resolveUse } from "../project/mod.ts";
import { cancelGivenUp } from "../task/runners/basic.ts";
import {
  canceledView,
  childKeyOf,
  type DriverPort,
  restoreChildResults,
  runnerOf,
  type Scope,
} from "../task/runners/mod.ts";
import type { TaskConfig } from "../task/schema.ts";
import { isWaiting } from "./driver_support.ts";

const log = getLogger(["engine", "driver"]);

/** Gives up the open task at `key` (recorded `record`) under the aborted `scope`, then throws its reason. */
export async function giveUpReplayed(
  driver: DriverPort,
  records: ReadonlyMap<string, RecordedTask>,
  task: TaskConfig,
  key: string,
  record: RecordedTask,
  scope: Scope,
): Promise<never> {
  const reason = scope.abort!.reason;
  // A scheduled retry has no attempt under way (the last one's clean-up ran when it was given up).
  // A retried container's earlier attempts published their children as they ended.
  if (record.attempt > 1) restoreChildResults(driver, task, key, scope.results, record.attempt - 1);
  if (record.status !== "retry_scheduled") {
    const inner = childKeyOf(key, record.attempt);
    // Each child goes through runTask under the aborted scope: an open one comes back here, any other
    // (ended, or never dispatched) throws the reason at once.
    const giveUpChild = (child: TaskConfig, childKey: string, childScope: Scope) =>
      driver.runTask(child, childKey, childScope).then(() => {}, (e) => {
        if (e !== reason) throw e;
      });
    if (task.type === "composite" || task.type === "parallel") {
      for (const child of task.tasks) await giveUpChild(child, `${inner}/${child.id}`, scope);
    } else if (task.type === "collection") {
      for (const childKey of records.keys()) {
        const index = childKey.startsWith(`${inner}[`)
          ? /^\[(\d+)\]$/.exec(childKey.slice(inner.length))
          : null;
        if (index) await giveUpChild(task.task, childKey, { ...scope, index: Number(index[1]) });
      }
    } else if (task.type === "basic" && (record.started || isWaiting(record)) && record.status !== "woken") {
      // A child whose end woke the task has ended already.
      await cancelChild(driver, task, key, record, scope);
    }
  }
  driver.tasks.giveUp(record.execId);
  driver.services.events.taskCanceled(driver, key, record.execId);
  scope.results.set(task.id, canceledView());
  throw reason;
}

/**
 * Cancels the sub-workflow a basic task's attempt started, found by starting it again: the start is
 * idempotent per attempt (services.ts, `child:<task exec id>`), so it answers the child that runs.
 */
async function cancelChild(
  driver: DriverPort,
  task: Extract<TaskConfig, { type: "basic" }>,
  key: string,
  record: RecordedTask,
  scope: Scope,
): Promise<void> {
  // A tool or agent call is stopped by its task.canceled.
  const resolved = resolveUse(driver.project, driver.workflow, task.use);
  if (resolved.kind !== "workflow") return;
  try {
    const input = runnerOf(task).input?.(task, driver.context(scope), key);
    const childExecId = await driver.track(
      driver.services.children.start(driver, resolved.workflow, key, record.execId, record.attempt, input),
    );
    await cancelGivenUp(driver, childExecId);
  } catch (e) {
    if (driver.isAbandoned) throw e;
    // The execution's end still finds it in the compozy_children index and cancels it (D2).
    log.warn("sub-workflow of given-up task {key} of {execId} not canceled: {error}", {
      key,
      execId: driver.execId,
      error: e instanceof Error ? e.message : String(e),
    });
  }
}
