/**
 * What parallel, collection and composite share: their own scope of results, and how a child's failure
 * becomes theirs. Children run inside the same driver, each recorded on its own, so a replay skips the
 * children that already finished.
 */
import { TaskFailure } from "../../../failure.ts";
import { ResultScope } from "../template_scope.ts";
import {
  canceledView,
  childKeyOf,
  type DriverPort,
  failedView,
  type Outcome,
  type ReplayContext,
  type RunContext,
  type Scope,
} from "./types.ts";
import type { TaskConfig } from "../schema.ts";

/**
 * Runs a container's attempt in a scope of its own (its children's results, readable by its `outputs` and,
 * for a composite or a parallel, by the tasks after it), under the key prefix of the attempt.
 */
export async function inContainer<T extends TaskConfig>(
  run: RunContext<T>,
  body: (key: string, inner: Scope) => Promise<unknown>,
): Promise<Outcome> {
  const { scope, execId, task } = run;
  const inner: Scope = { ...scope, parentExecId: execId, results: new ResultScope(scope.results) };
  try {
    return { ok: true, output: await body(childKeyOf(run.key, run.attempt), inner) };
  } finally {
    if (task.type !== "collection") inner.results.publish();
  }
}

/**
 * A child's failure as its parent's, with the child's code. Retryable: the child used up its own retries, and
 * `retry` on the container asks for the whole container to run again.
 */
export function childFailure(
  key: string,
  child: string,
  outcome: Extract<Outcome, { ok: false }>,
): TaskFailure {
  return new TaskFailure({
    message: `${key}/${child}: ${outcome.failure.message}`,
    code: outcome.failure.code,
    retryable: true,
    details: { child },
    cause: outcome.failure,
  });
}

/**
 * Which of a container's failed children gives it its error: the one whose failure was recorded first (model
 * finding G11, seed 96020). A replay gets its recorded outcomes back in the order it reaches them (the
 * definition's), not the order they happened, so a child declared first and failed last gave a `wait_all`
 * parallel or a collection its error once their end came on a replay (after a park), where the first run gave
 * the other child's. Failures this run sees happen after every recorded one, in the order they come.
 */
export class FirstFailure {
  private first: { failure: TaskFailure; seq: number } | undefined;
  private readonly offered = new Set<TaskFailure>();

  constructor(private readonly driver: DriverPort) {}

  /** Keeps `failure` of `child` (at `childKey`) if it is the earliest so far; returns it, to be thrown. */
  add(child: TaskConfig, childKey: string, failure: TaskFailure): TaskFailure {
    const recorded = this.driver.recordedAt(child, childKey);
    const seq = recorded && !recorded.outcome.ok ? recorded.seq : Number.POSITIVE_INFINITY;
    this.offered.add(failure);
    if (!this.first || seq < this.first.seq) this.first = { failure, seq };
    return failure;
  }

  /** The earliest failure, if any child failed. */
  get failure(): TaskFailure | undefined {
    return this.first?.failure;
  }

  /** What to throw in place of `error`: the earliest failure when `error` is a child's, else `error` itself. */
  instead(error: unknown): unknown {
    return error instanceof TaskFailure && this.offered.has(error) ? this.first!.failure : error;
  }
}

/** Runs `fn` over `items` with at most `limit` at once; the first error is thrown after all started work ends. */
export async function forEachLimited<T>(
  items: T[],
  limit: number,
  fn: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  let error: unknown;
  const worker = async () => {
    while (next < items.length && error === undefined) {
      const item = items[next++];
      try {
        await fn(item);
      } catch (e) {
        error ??= e;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(Math.max(1, limit), items.length) }, worker));
  if (error !== undefined) throw error;
}

/**
 * A replayed composite's or parallel's recorded success: its children's recorded results are put back in the
 * scope it ran in, where the tasks after it read them as on the first run (docs/yaml-reference.md, "What
 * `.tasks` sees").
 */
export function restoreChildren<T extends TaskConfig>(
  { driver, task, key, scope }: ReplayContext<T>,
  recorded: Extract<Outcome, { ok: true }>,
): Outcome {
  restoreChildResults(driver, task, key, scope.results);
  return recorded;
}

/**
 * Puts the results of an ended composite's or parallel's children (and theirs) back into `results`, as its
 * first run published them whatever its outcome. A child dispatched with no outcome recorded was given up when
 * its container ended (a decided race's or fail_fast's other branch, the running child of a timed-out
 * attempt): CANCELED, as the first run showed it. A child never dispatched (a `max_workers` branch after the
 * decision, a composite's children after its failed one) is absent, as it was. Each attempt published its
 * children as it ended (a retried container's first attempt too), so every attempt is restored in turn, the
 * later over the earlier: all of them (`attempts`, default the last recorded), or those before the one a
 * replay goes on with (ExecutionDriver.runTask).
 */
export function restoreChildResults(
  driver: DriverPort,
  task: TaskConfig,
  key: string,
  results: ResultScope,
  attempts = driver.recordOf(key)?.attempt ?? 1,
): void {
  if (task.type !== "composite" && task.type !== "parallel") return;
  for (let attempt = 1; attempt <= attempts; attempt++) {
    for (const child of task.tasks) {
      const at = `${childKeyOf(key, attempt)}/${child.id}`;
      if (!driver.recordOf(at)) continue;
      restoreChildResults(driver, child, at, results);
      const { outcome } = driver.recordedAt(child, at) ?? {};
      results.set(
        child.id,
        !outcome
          ? canceledView()
          : outcome.ok
          ? { output: outcome.output, status: outcome.skipped ? "SKIPPED" : "SUCCESS" }
          : failedView(outcome.failure),
      );
    }
  }
}
