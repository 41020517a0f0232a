/**
 * The agent loops running in this runtime process, by task execution id. A second `AgentExecute` for a task
 * whose loop still runs here (the engine died and its successor re-sent the task while the loop went on) joins
 * that loop and answers with its outcome, rather than running a second loop that would ask the model for the
 * same turns. A canceled loop is not joined: the next attempt starts afresh from the recorded turns.
 *
 * Two runtime processes may still each run a loop of the same task (the re-sent request reached the other
 * one); then the turn fence (agent_turn_fence.ts) has each turn made by one of them, the other replaying it.
 *
 * @module
 */

interface Running<R> {
  result: Promise<R>;
  canceled: boolean;
}

export class AgentLoops<R> {
  readonly #running = new Map<string, Running<R>>();

  /** The outcome of the loop of `taskExecId` running here, or of a new one made by `start`. */
  run(taskExecId: string, start: () => Promise<R>): Promise<R> {
    const current = this.#running.get(taskExecId);
    if (current && !current.canceled) return current.result;
    const entry: Running<R> = { result: Promise.resolve(undefined as R), canceled: false };
    entry.result = start().finally(() => {
      if (this.#running.get(taskExecId) === entry) this.#running.delete(taskExecId);
    });
    this.#running.set(taskExecId, entry);
    return entry.result;
  }

  /** The loop of `taskExecId` was canceled: a later request for it is not joined to it. */
  canceled(taskExecId: string): void {
    const current = this.#running.get(taskExecId);
    if (current) current.canceled = true;
  }

  get size(): number {
    return this.#running.size;
  }
}
