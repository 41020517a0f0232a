/**
 * A reload whose new engine did not start. The old engine had stopped first (one engine owns the store's
 * executions at a time, so the two never run together), and the stack started it again on the previous
 * project; `restartFailure` says when even that failed and no engine runs.
 *
 * @module
 */

/** The new engine of a reload did not start; the previous one was started again unless `restartFailure`. */
export class EngineSwapError extends Error {
  override name = "EngineSwapError";
  constructor(readonly startFailure: unknown, readonly restartFailure?: unknown) {
    super(
      restartFailure === undefined
        ? `the engine did not start on the new definitions (${text(startFailure)}); ` +
          "it was started again on the previous ones"
        : `the engine did not start on the new definitions (${text(startFailure)}), nor again on the ` +
          `previous ones (${text(restartFailure)}): no engine runs, executions wait until one starts`,
      { cause: restartFailure ?? startFailure },
    );
  }

  /** Whether an engine runs (the previous project's). */
  get engineRuns(): boolean {
    return this.restartFailure === undefined;
  }
}

function text(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
