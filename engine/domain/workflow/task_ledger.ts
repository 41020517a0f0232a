/**
 * The task executions of one workflow execution as its driver knows them: every one dispatched, and those
 * whose outcome is recorded, from its replayed history and from what it records itself. Its end carries them
 * (`EndedTasks`): the state fold then lists every task in the ended document, whichever engine folded (or
 * will fold) a dispatch, and waits for the documents of this execution's recorded tasks only, not for every
 * event of the stream before the end.
 */
import type { MessageInitShape } from "@bufbuild/protobuf";
import type * as pb from "../../../pkg/pb/mod.ts";
import type { RecordedTask } from "../../history/replay_state.ts";
import { MAX_LISTED_TASKS } from "../../state/execution_state.ts";

const ENDED_STATUSES = new Set<RecordedTask["status"]>(["success", "skipped", "failed"]);

export class TaskLedger {
  private readonly dispatched = new Set<string>();
  private readonly recorded = new Set<string>();

  constructor(replayed: Iterable<RecordedTask> = []) {
    for (const task of replayed) {
      this.dispatched.add(task.execId);
      if (ENDED_STATUSES.has(task.status)) this.recorded.add(task.execId);
    }
  }

  /** A task execution was dispatched (its dispatch is published without waiting). */
  dispatch(execId: string): void {
    this.dispatched.add(execId);
  }

  /** A task execution's outcome is stored (its awaited write returned). */
  record(execId: string): void {
    this.dispatched.add(execId);
    this.recorded.add(execId);
  }

  /** What the end carries; undefined past MAX_LISTED_TASKS (the ended document lists none then either). */
  ended(): MessageInitShape<typeof pb.EndedTasksSchema> | undefined {
    if (this.dispatched.size > MAX_LISTED_TASKS) return undefined;
    return { execIds: [...this.dispatched].sort(), recordedExecIds: [...this.recorded].sort() };
  }
}
