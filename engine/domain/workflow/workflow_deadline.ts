/**
 * A workflow's `config.timeout`: an in-memory timer while its driver runs, and, at the first start, a durable
 * timer that wakes the execution when it is parked (or its engine died) at its deadline. The deadline runs
 * from the execution's recorded start, on the real clock, whatever happened meanwhile.
 */
import { getLogger } from "../../../pkg/logger/mod.ts";
import { type LongTimer, setLongTimeout } from "../../long_timer.ts";
import { parseDuration } from "../project/mod.ts";
import type { DriverPort } from "../task/runners/mod.ts";

const log = getLogger(["engine", "driver"]);

export class WorkflowDeadline {
  #timer?: LongTimer;

  /**
   * `startedAt` is the execution's recorded start (undefined: not known, no deadline), `firstRun` whether no
   * task was recorded yet (the durable timer is stored then, once), `onDue` times the execution out.
   */
  constructor(
    private readonly driver: DriverPort,
    private readonly startedAt: Date | undefined,
    private readonly firstRun: boolean,
    private readonly onDue: () => Promise<void>,
  ) {}

  private get timeout(): string | undefined {
    return this.driver.workflow.config.config?.timeout;
  }

  /** When the execution times out (ms since the epoch); undefined: no `config.timeout`, or no known start. */
  private get deadlineMs(): number | undefined {
    const timeout = this.timeout;
    if (!timeout || !this.startedAt) return undefined;
    return this.startedAt.getTime() + parseDuration(timeout);
  }

  /** Whether the deadline has passed already: the execution's engine was down past it, or its command late. */
  overdue(now = Date.now()): boolean {
    const deadline = this.deadlineMs;
    return deadline !== undefined && deadline <= now;
  }

  arm(): void {
    const deadline = this.deadlineMs;
    if (deadline === undefined) return;
    const execId = this.driver.execId;
    // A long timer: a `config.timeout` of 25 days or more timed the execution out at once (outside review F6).
    this.#timer = setLongTimeout(
      () =>
        this.onDue().catch((e) =>
          log.warn("time-out of {execId} not recorded: {error}", { execId, error: String(e) })
        ),
      deadline - Date.now(),
    );
    if (this.firstRun) {
      // Without its durable timer a parked execution would never time out: failing to store it gives up
      // (recorded() abandons the driver; the command comes back and the start is replayed).
      this.driver.recorded(
        this.driver.services.timers.schedule(
          this.driver,
          "(workflow)",
          execId,
          "workflow_timeout",
          deadline,
          1,
        ),
      ).catch((e) =>
        log.warn("time-out timer of {execId} not stored: {error}", { execId, error: String(e) })
      );
    }
  }

  /**
   * The driver stops (`ended`: the execution ended). An ended execution's durable timer is removed: one left
   * in TASK_CMDS would be held there until due; when removing it fails, it is acknowledged then (the execution
   * has ended), so the failure is only logged.
   */
  disarm(ended: boolean): void {
    this.#timer?.clear();
    if (!ended || !this.timeout) return;
    this.driver.services.timers.clearWorkflowTimeout(this.driver).catch((e) =>
      log.warn("time-out timer of {execId} not removed: {error}", {
        execId: this.driver.execId,
        error: String(e),
      })
    );
  }
}
