/**
 * The task time-outs the engine applies itself: a task's `timeout` on a sleep, a container or a sub-workflow
 * bounds each attempt with a durable timer (the attempt may park, so an in-memory timer alone would be lost
 * with the driver). Tool and agent calls carry their limit to the runtime instead, and a wait's `timeout` is
 * how long it waits (TaskRunner.ownsTimeout).
 */
import { getLogger } from "../../../pkg/logger/mod.ts";
import { TaskFailure } from "../../failure.ts";
import type { RecordedTask } from "../../history/replay_state.ts";
import { parseDuration } from "../project/mod.ts";
import { type DriverPort, runnerOf } from "../task/runners/mod.ts";
import type { TaskConfig } from "../task/schema.ts";
import { isWaiting } from "./driver_support.ts";

const log = getLogger(["engine", "driver"]);

/** An attempt with an engine-side `timeout`, reachable by its durable timer. */
interface TimedAttempt {
  attempt: number;
  /**
   * Past what its history recorded: it started in this driver, or its replay started a task or an attempt, or
   * registered a wait. Until then its replay only takes and stores what the attempt did before (see live).
   */
  live: boolean;
  /** When it times out; unknown for a replayed attempt whose start was not stored. */
  dueMs?: number;
  expire(): void;
  /** Resolves once the attempt's outcome is recorded (the timer's command may then be acknowledged). */
  settled: Promise<void>;
}

export class AttemptTimeouts {
  /** Attempts bounded by an engine-side time-out, by task exec id. */
  readonly #timed = new Map<string, TimedAttempt>();

  /**
   * `giveUp` abandons the execution: without its timer a parked attempt would never time out. `changed` is
   * told when an attempt is bounded here, goes live or ends: a time-out delivered to a replay waits for
   * these.
   */
  constructor(
    private readonly driver: DriverPort,
    private readonly giveUp: () => void,
    private readonly changed: () => void,
  ) {}

  /** An attempt of `taskExecId` is bounded here (its time-out may be delivered). */
  has(taskExecId: string): boolean {
    return this.#timed.has(taskExecId);
  }

  /** The attempt of `taskExecId` bounded here is past what its history recorded, or no longer bounded. */
  liveOrEnded(taskExecId: string): boolean {
    return this.#timed.get(taskExecId)?.live ?? true;
  }

  /**
   * Bounds one attempt by the task's `timeout`, unless its runner applies it: at the time-out, `ac` aborts
   * with a retryable `task_timeout`. The result's `done()` must be called when the attempt's outcome is
   * recorded. The timer is stored once per attempt (a replay of a started attempt finds it stored already).
   */
  arm(
    task: TaskConfig,
    key: string,
    execId: string,
    attempt: number,
    resumed: RecordedTask | undefined,
    ac: AbortController,
  ): { done(): void; live(): void } | undefined {
    if (!task.timeout || runnerOf(task).ownsTimeout?.(this.driver, task)) return undefined;
    const timeoutMs = parseDuration(task.timeout);
    let done!: () => void;
    const settled = new Promise<void>((resolve) => done = resolve);
    const expire = () =>
      ac.abort(
        new TaskFailure({
          message: `task '${key}' timed out after ${task.timeout}`,
          code: "task_timeout",
          retryable: true,
          details: { timeout_ms: timeoutMs },
        }),
      );
    const startedAtMs = resumed?.started || isWaiting(resumed) ? resumed?.startedAtMs : Date.now();
    const dueMs = startedAtMs === undefined ? undefined : startedAtMs + timeoutMs;
    const fresh = !resumed?.started && !isWaiting(resumed);
    const timed: TimedAttempt = { attempt, live: fresh, dueMs, expire, settled };
    this.#timed.set(execId, timed);
    this.changed();
    if (fresh) {
      this.driver.track(
        this.driver.services.timers.schedule(this.driver, key, execId, "task_timeout", dueMs!, attempt),
      ).catch((e) => {
        log.warn("time-out of {key} not stored: {error}", { key, error: String(e) });
        this.giveUp();
      });
    }
    return {
      done: () => {
        if (this.#timed.get(execId) === timed) this.#timed.delete(execId);
        done();
        this.changed();
      },
      live: () => {
        if (timed.live) return;
        timed.live = true;
        this.changed();
      },
    };
  }

  /**
   * A time-out is due: the attempt it was stored for fails, and this resolves once that is recorded. One
   * for another attempt (or for none running here) is moot.
   */
  async expire(taskExecId: string, attempt: number | undefined): Promise<void> {
    const timed = this.#timed.get(taskExecId);
    if (!timed || (attempt !== undefined && attempt !== timed.attempt)) return;
    timed.expire();
    await timed.settled;
  }

  /**
   * Every bounded attempt whose time-out is due by `nowMs` fails, and this resolves once that is recorded.
   * Called before a wake-up ends a wait: the time-out came first, even when its timer is delivered later
   * (timers due while the engine was down come back in no particular order: crash seed 31670, where a
   * sleep's end beat its task's overdue 300 ms time-out and the task succeeded).
   */
  async expireOverdue(nowMs: number): Promise<void> {
    const due = [...this.#timed.values()].filter((t) => t.dueMs !== undefined && t.dueMs <= nowMs);
    for (const timed of due) timed.expire();
    await Promise.all(due.map((t) => t.settled));
  }

  /** The execution ended or was given up: no attempt is bounded any more. */
  clear(): void {
    this.#timed.clear();
  }
}
