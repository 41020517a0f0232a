/** Every task type's runner, by `type`: the one place a task type's behaviour lives. */
import type { TaskConfig } from "../schema.ts";
import { aggregateRunner } from "./aggregate.ts";
import { basicRunner } from "./basic.ts";
import { collectionRunner } from "./collection.ts";
import { compositeRunner } from "./composite.ts";
import { parallelRunner } from "./parallel.ts";
import { routerRunner } from "./router.ts";
import { signalRunner } from "./signal.ts";
import { sleepRunner } from "./sleep.ts";
import type { Outcome, ReplayContext, RunContext, TaskOf, TaskRunner } from "./types.ts";
import { waitRunner } from "./wait.ts";

export const RUNNERS: { [K in TaskConfig["type"]]: TaskRunner<TaskOf<K>> } = {
  basic: basicRunner,
  router: routerRunner,
  aggregate: aggregateRunner,
  parallel: parallelRunner,
  collection: collectionRunner,
  composite: compositeRunner,
  wait: waitRunner,
  sleep: sleepRunner,
  signal: signalRunner,
};

/** The runner of `task`'s type. */
export function runnerOf(task: TaskConfig): TaskRunner<TaskConfig> {
  return RUNNERS[task.type] as TaskRunner<TaskConfig>;
}

/** Runs one attempt of `run.task` with the runner of its type. */
export function runAttempt(run: RunContext<TaskConfig>) {
  return runnerOf(run.task).run(run);
}

/** A recorded success as the flow needs it on a replay (see TaskRunner.replayed). */
export function replayedSuccess(replay: ReplayContext<TaskConfig>, recorded: Extract<Outcome, { ok: true }>) {
  const runner = runnerOf(replay.task);
  return runner.replayed ? runner.replayed(replay, recorded) : recorded;
}

export * from "./types.ts";
export { restoreChildResults } from "./children.ts";
export { routeOf } from "./router.ts";
export { waitTimeout } from "./wait.ts";
