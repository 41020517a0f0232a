/**
 * What an execution's end waits for before it is written: the documents of the tasks its driver recorded an
 * outcome for (the end lists them, see TaskLedger), stored ended. A task this engine folded is known here
 * with no request; one folded by another engine is read from the bucket, again with a growing pause while
 * it is not ended yet (an engine that died holds its events until the ack wait gives them back). The wait
 * concerns this execution's tasks only: an event of another execution that cannot be folded, or that a dead
 * engine holds, delays no other end.
 *
 * A task document can also stay behind for good: on a replicated bucket, nats-server 2.9 checks an update's
 * expected revision against the writes already applied only, so two engines' updates of one document at the
 * same revision may both be accepted, and the later one (a task's start, folded by one engine) may overwrite
 * the other (its success, folded by the other engine). Nothing would ever write that document again. So a
 * task still not ended `repairAfterMs` into the wait is folded again from the execution's history (`repair`,
 * state_manager.ts), and again after each doubling of that time. On a replicated bucket the tasks this engine
 * stored ended are read once too: its own write may be the one that was overwritten.
 *
 * @module
 */
import { getLogger } from "../../pkg/logger/mod.ts";
import { isTerminal, type TaskExecutionState } from "./execution_state.ts";

const log = getLogger(["engine", "state"]);

/** Executions whose ended tasks are remembered; past it the oldest are forgotten (read again if needed). */
const REMEMBERED_EXECUTIONS = 10_000;

/** The longest pause between two reads of task documents another engine folds. */
const MAX_PAUSE_MS = 1_000;

/**
 * How long an end waits for a task document before folding it again from the history: well above the time
 * another engine takes to fold a task's outcome on a loaded machine (the end seen at most ~2.7 s after its
 * event in `deno task bench cluster` at load 20), well below the ack wait.
 */
export const REPAIR_AFTER_MS = 3_000;

/** Folds the listed tasks' documents again from the history and stores those that ended (see the module). */
export type RepairTasks = (taskExecIds: readonly string[]) => Promise<void>;

/** The task documents this engine stored as ended, by execution, until that execution's end is written. */
export class EndedTasks {
  private readonly byExecution = new Map<string, Set<string>>();

  constructor(
    /** Reads a task document (`<exec id>.<task exec id>`) from the bucket. */
    private readonly read: (key: string) => Promise<{ doc?: TaskExecutionState }>,
    /** How long an end waits at most; past it the end is written with a warning. */
    private readonly maxWaitMs: number,
    /** How long it waits before folding a task again from the history (see the module). */
    private readonly repairAfterMs = REPAIR_AFTER_MS,
    /**
     * Whether a task this engine stored ended may be taken as ended without a read. Not on a replicated
     * bucket: another engine's update at the same revision may have overwritten it (see the module).
     */
    private readonly trustStored = true,
  ) {}

  /** This engine stored (or found stored) the task's document with an ended status. */
  stored(execId: string, taskExecId: string): void {
    let tasks = this.byExecution.get(execId);
    if (!tasks) {
      this.byExecution.set(execId, tasks = new Set());
      if (this.byExecution.size > REMEMBERED_EXECUTIONS) {
        this.byExecution.delete(this.byExecution.keys().next().value!);
      }
    }
    tasks.add(taskExecId);
  }

  /** The execution's end is written: nothing waits for its tasks any more. */
  forget(execId: string): void {
    this.byExecution.delete(execId);
  }

  /**
   * Resolves once every listed task's document is stored ended, or after `maxWaitMs` (true when all are,
   * false when the time ran out). Tasks still not ended after `repairAfterMs` are given to `repair`.
   */
  async wait(execId: string, taskExecIds: readonly string[], repair?: RepairTasks): Promise<boolean> {
    const began = Date.now();
    const deadline = began + this.maxWaitMs;
    let repairAt = began + this.repairAfterMs;
    let pause = 20;
    let missing = this.trustStored ? this.unknown(execId, taskExecIds) : [...taskExecIds];
    while (missing.length) {
      const docs = await Promise.all(missing.map((id) => this.read(`${execId}.${id}`)));
      docs.forEach(({ doc }, i) => {
        if (doc && isTerminal(doc.status)) this.stored(execId, missing[i]);
        // What this engine stored was overwritten since: only a new write of it counts now.
        else this.byExecution.get(execId)?.delete(missing[i]);
      });
      missing = this.unknown(execId, missing);
      if (!missing.length) break;
      if (repair && Date.now() >= repairAt) {
        log.info(
          "The end of execution {exec_id} waited {wait_ms} ms for the documents of tasks {tasks}; folding them again from the history",
          { exec_id: execId, wait_ms: Date.now() - began, tasks: missing.join(", ") },
        );
        await repair(missing).catch((error) =>
          log.warn("Execution {exec_id}: folding tasks {tasks} again failed: {error}", {
            exec_id: execId,
            tasks: missing.join(", "),
            error,
          })
        );
        repairAt = began + 2 * (Date.now() - began);
        missing = this.unknown(execId, missing);
        continue;
      }
      if (Date.now() + pause > deadline) {
        log.warn(
          "Execution {exec_id} ends with {count} recorded tasks whose documents are not stored ended after {wait_ms} ms; writing the end anyway",
          { exec_id: execId, count: missing.length, wait_ms: this.maxWaitMs },
        );
        return false;
      }
      await new Promise((resolve) => setTimeout(resolve, pause));
      pause = Math.min(pause * 2, MAX_PAUSE_MS);
      missing = this.unknown(execId, missing);
    }
    return true;
  }

  private unknown(execId: string, taskExecIds: readonly string[]): string[] {
    const known = this.byExecution.get(execId);
    return known ? taskExecIds.filter((id) => !known.has(id)) : [...taskExecIds];
  }
}
