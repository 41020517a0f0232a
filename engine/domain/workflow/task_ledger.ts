/**
 * The task executions of one workflow execution as its driver knows them: every one dispatched, and those
 * whose outcome is recorded, from its replayed history and from what it records itself. Its end carries them
 * (`EndedTasks`): the state fold then lists every task in the ended document, whichever engine folded (or
 * will fold) a dispatch, and waits for the documents of this execution's recorded tasks only, not for every
 * event of the stream before the end. The tasks still open when the execution ends are recorded canceled
 * before its end (see ExecutionDriver.cancelOpenTasks).
 */
import type { MessageInitShape } from "@bufbuild/protobuf";
import type * as pb from "../../../pkg/pb/mod.ts";
import { hasEnded, type RecordedTask } from "../../history/replay_state.ts";
import { MAX_LISTED_TASKS } from "../../state/execution_state.ts";

export class TaskLedger {
  /** Task exec id → the task's key (its id within the execution). */
  private readonly dispatched = new Map<string, string>();
  private readonly recorded = new Set<string>();
  /** Given up while it ran (its branch lost a race, say): its `task.canceled` is published already. */
  private readonly given = new Set<string>();
  /** Outcome writes on their way to the stream: whether each task is open is known once they settle. */
  private readonly writing = new Set<Promise<void>>();

  /** `replayed`: the replay's records by task key. */
  constructor(replayed: Iterable<[string, RecordedTask]> = []) {
    for (const [key, task] of replayed) {
      this.dispatched.set(task.execId, key);
      if (hasEnded(task)) this.recorded.add(task.execId);
    }
  }

  /** A task execution was dispatched (its dispatch is published without waiting). */
  dispatch(execId: string, key: string): void {
    this.dispatched.set(execId, key);
  }

  /** A task execution's outcome is stored (its awaited write returned). */
  record(execId: string, key: string): void {
    if (!this.dispatched.has(execId)) this.dispatched.set(execId, key);
    this.recorded.add(execId);
  }

  /** An outcome write begun (it calls `record` once stored), which `settled` waits for. */
  recording(write: Promise<void>): Promise<void> {
    this.writing.add(write);
    const forget = () => this.writing.delete(write);
    write.then(forget, forget);
    return write;
  }

  /**
   * Resolves once the outcome writes begun so far have settled, so that `open` then leaves out a task whose
   * outcome was being stored (outside review E4: an execution's end recorded `task.canceled` after the
   * `task.success` that was on its way when the cancel came).
   */
  async settled(): Promise<void> {
    await Promise.allSettled([...this.writing]);
  }

  /** A task execution was given up while it ran; its end is the `task.canceled` published then. */
  giveUp(execId: string): void {
    this.given.add(execId);
  }

  /** The task executions (exec id, key) with no end yet. */
  open(): Array<[string, string]> {
    return [...this.dispatched].filter(([execId]) => !this.recorded.has(execId) && !this.given.has(execId));
  }

  /** What the end carries; undefined past MAX_LISTED_TASKS (the ended document lists none then either). */
  ended(): MessageInitShape<typeof pb.EndedTasksSchema> | undefined {
    if (this.dispatched.size > MAX_LISTED_TASKS) return undefined;
    return { execIds: [...this.dispatched.keys()].sort(), recordedExecIds: [...this.recorded].sort() };
  }
}
