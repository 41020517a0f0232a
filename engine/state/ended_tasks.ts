/**
 * What an execution's end waits for before it is written: the documents of the tasks its driver recorded an
 * outcome for (the end lists them, see TaskLedger), stored ended. A task this engine folded is known here
 * with no request; one folded by another engine is read from the bucket, again with a growing pause while
 * it is not ended yet (an engine that died holds its events until the ack wait gives them back). The wait
 * concerns this execution's tasks only: an event of another execution that cannot be folded, or that a dead
 * engine holds, delays no other end.
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

/** The task documents this engine stored as ended, by execution, until that execution's end is written. */
export class EndedTasks {
  private readonly byExecution = new Map<string, Set<string>>();

  constructor(
    /** Reads a task document (`<exec id>.<task exec id>`) from the bucket. */
    private readonly read: (key: string) => Promise<{ doc?: TaskExecutionState }>,
    /** How long an end waits at most; past it the end is written with a warning. */
    private readonly maxWaitMs: number,
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
   * false when the time ran out).
   */
  async wait(execId: string, taskExecIds: readonly string[]): Promise<boolean> {
    const deadline = Date.now() + this.maxWaitMs;
    let pause = 20;
    let missing = this.unknown(execId, taskExecIds);
    while (missing.length) {
      const docs = await Promise.all(missing.map((id) => this.read(`${execId}.${id}`)));
      docs.forEach(({ doc }, i) => {
        if (doc && isTerminal(doc.status)) this.stored(execId, missing[i]);
      });
      missing = this.unknown(execId, missing);
      if (!missing.length) break;
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
