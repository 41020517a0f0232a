/**
 * Schedule triggers (`type: schedule`, `cron`, `input`). Every engine process runs the schedules; for each
 * tick exactly one execution starts, however many processes run and however often they restart:
 *
 * - A process claims a tick by writing it to the schedule's KV entry with compare-and-set; a process that
 *   loses the race does nothing. The winner triggers with the idempotency key
 *   `schedule:<workflow>:<tick ISO>`, which the orchestrator deduplicates, then marks the tick `sent`.
 * - A tick claimed but never marked sent (its process died in between) is sent again by whichever process
 *   looks next; the idempotency key makes the repeat harmless.
 * - Missed ticks (no process was running): at start-up the latest missed tick runs once; older missed ticks
 *   are skipped and logged. A schedule seen for the first time, or whose cron changed, starts counting from
 *   start-up and owes nothing before it.
 * - Cron expressions are evaluated in UTC, so that every host agrees on when a tick is.
 *
 * @module
 */
import { MAX_TIMER_MS } from "../long_timer.ts";
import { Cron } from "croner";
import type { ExecutionClient } from "../client.ts";
import type { Project } from "../domain/project/types.ts";
import { InputValidationError, UnknownWorkflowError } from "../errors.ts";
import { getLogger } from "../../pkg/logger/mod.ts";
import { renderValue } from "../../pkg/tplengine/mod.ts";
import type { ScheduleRecord, ScheduleStore } from "./schedule_store.ts";
import { triggerEnv } from "./trigger_env.ts";

/** setTimeout cannot wait longer than 2^31-1 ms; longer waits re-arm. */

export interface Schedule {
  /** The KV key: `<workflow>.<index of the schedule among the workflow's schedules>`. */
  key: string;
  workflowId: string;
  index: number;
  cron: string;
  /** The declared `input` (templates render at each tick with `.env`). */
  input: unknown;
  env: Record<string, string>;
}

/** How long a claim protects its tick from being re-sent by another process (a trigger takes far less). */
const CLAIM_GRACE_MS = 30_000;
/** A tick that met an outage is tried again after 1 s, then 2, 4, … up to 30 s, until the next tick is due. */
const FIRE_RETRY_FIRST_MS = 1_000;
const FIRE_RETRY_MAX_MS = 30_000;

export type FireOutcome = "fired" | "resent" | "already_fired" | "claimed_elsewhere" | "refused";

export interface ScheduleRunnerOptions {
  project: Project;
  client: Pick<ExecutionClient, "trigger">;
  store: ScheduleStore;
  /** Written into claims, for operators reading the bucket. */
  instanceId: string;
  processEnv?: Record<string, string>;
  /** The clock; tests move it. */
  now?: () => Date;
}

export class ScheduleRunner {
  readonly schedules: Schedule[];
  private readonly timers = new Set<ReturnType<typeof setTimeout>>();
  private readonly inFlight = new Set<Promise<unknown>>();
  /** Retries waiting out an outage, woken by {@link stop}. */
  private readonly sleepers = new Set<() => void>();
  private readonly now: () => Date;
  private readonly log = getLogger(["engine", "schedules"]);
  private stopped = false;

  constructor(private readonly options: ScheduleRunnerOptions) {
    this.now = options.now ?? (() => new Date());
    this.schedules = schedulesOf(options.project, options.processEnv ?? Deno.env.toObject());
  }

  /** Catches up on missed ticks, then fires every schedule on time until {@link stop}. */
  async start(): Promise<void> {
    for (const schedule of this.schedules) {
      try {
        await this.catchUp(schedule);
      } catch (e) {
        this.log.error("Schedule {key} could not catch up: {error}", {
          key: schedule.key,
          error: message(e),
        });
      }
      this.arm(schedule, new Cron(schedule.cron, { timezone: "UTC" }));
    }
  }

  /** Stops the timers and waits for ticks being fired. */
  async stop(): Promise<void> {
    this.stopped = true;
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
    for (const wake of [...this.sleepers]) wake();
    await Promise.allSettled([...this.inFlight]);
  }

  /** The start-up policy: the latest missed tick once (or a claimed, unsent one again); older ones skipped. */
  async catchUp(schedule: Schedule): Promise<FireOutcome | "nothing_due"> {
    const cron = new Cron(schedule.cron, { timezone: "UTC" });
    const now = this.now();
    const stored = await this.options.store.get(schedule.key);
    if (!stored || stored.record.cron !== schedule.cron) {
      const baseline: ScheduleRecord = {
        tick: now.toISOString(),
        state: "baseline",
        cron: schedule.cron,
        by: this.options.instanceId,
      };
      await this.options.store.compareAndSet(schedule.key, baseline, stored?.revision);
      return "nothing_due";
    }
    // previousRuns excludes a run at exactly the reference time; 1 ms later includes it.
    const [latestDue] = cron.previousRuns(1, new Date(now.getTime() + 1));
    if (!latestDue) return "nothing_due";
    const last = Date.parse(stored.record.tick);
    if (last > latestDue.getTime() || (last === latestDue.getTime() && stored.record.state !== "claimed")) {
      return "nothing_due";
    }
    if (last < latestDue.getTime()) {
      if (stored.record.state === "claimed") {
        this.log.warn(
          "Schedule {key} tick {tick} was claimed but never confirmed sent; a later tick replaces it",
          {
            key: schedule.key,
            tick: stored.record.tick,
          },
        );
      }
      const skipped = countTicksBetween(cron, new Date(last), latestDue);
      if (skipped > 0) {
        this.log.warn(
          "Schedule {key} missed {skipped} older tick(s) while no process ran; they are skipped",
          {
            key: schedule.key,
            skipped,
          },
        );
      }
    }
    return await this.fire(schedule, latestDue);
  }

  /** Fires one tick of a schedule, unless it already was (here or in another process). */
  async fire(schedule: Schedule, tick: Date): Promise<FireOutcome> {
    const { store } = this.options;
    const stored = await store.get(schedule.key);
    const tickIso = tick.toISOString();
    let revision = stored?.revision;
    let resend = false;
    if (stored && stored.record.cron === schedule.cron) {
      const last = Date.parse(stored.record.tick);
      if (last > tick.getTime()) return "already_fired";
      if (last === tick.getTime()) {
        if (stored.record.state !== "claimed") return "already_fired";
        // Another process is sending this tick right now; only a claim left behind by a dead one is re-sent.
        const age = Date.now() - (stored.record.at ?? 0);
        if (stored.record.by !== this.options.instanceId && age < CLAIM_GRACE_MS) return "claimed_elsewhere";
        resend = true;
      }
    }
    if (!resend) {
      const claim: ScheduleRecord = {
        tick: tickIso,
        state: "claimed",
        cron: schedule.cron,
        by: this.options.instanceId,
        at: Date.now(),
      };
      revision = await store.compareAndSet(schedule.key, claim, revision);
      if (revision === undefined) return "claimed_elsewhere";
    }
    const outcome = await this.sendTrigger(schedule, tickIso);
    const done: ScheduleRecord = {
      tick: tickIso,
      state: "sent",
      cron: schedule.cron,
      by: this.options.instanceId,
      ...(outcome.error ? { error: outcome.error } : {}),
    };
    // Losing this write is harmless: a later reader re-sends the tick under the same idempotency key.
    await store.compareAndSet(schedule.key, done, revision);
    if (outcome.error) return "refused";
    return resend ? "resent" : "fired";
  }

  /** Triggers the tick; a refusal that no retry can fix is returned, an outage is thrown. */
  private async sendTrigger(schedule: Schedule, tickIso: string): Promise<{ error?: string }> {
    const suffix = schedule.index > 0 ? `:${schedule.index}` : "";
    try {
      const input = renderValue(schedule.input ?? {}, { env: schedule.env });
      const { execId, duplicate } = await this.options.client.trigger(schedule.workflowId, input, {
        idempotencyKey: `schedule:${schedule.workflowId}:${tickIso}${suffix}`,
        source: "schedule",
      });
      this.log.info("Schedule {key} tick {tick} started {exec_id}{duplicate}", {
        key: schedule.key,
        tick: tickIso,
        exec_id: execId,
        duplicate: duplicate ? " (already started)" : "",
      });
      return {};
    } catch (e) {
      if (e instanceof InputValidationError || e instanceof UnknownWorkflowError || isTemplateError(e)) {
        this.log.error("Schedule {key} tick {tick} refused: {error}", {
          key: schedule.key,
          tick: tickIso,
          error: message(e),
        });
        return { error: message(e) };
      }
      throw e;
    }
  }

  /**
   * Fires a tick, trying again through an outage (NATS down, no engine answering) until the schedule's next
   * tick is due: arming the next tick first would drop this one for good (outside review B7: a 7 s NATS
   * restart lost a tick). Re-firing is safe: a claim of ours is re-sent under the same idempotency key.
   */
  private async fireThroughOutage(schedule: Schedule, cron: Cron, tick: Date): Promise<void> {
    const following = cron.nextRun(tick)?.getTime() ?? Infinity;
    for (
      let attempt = 1, delay = FIRE_RETRY_FIRST_MS;;
      attempt++, delay = Math.min(delay * 2, FIRE_RETRY_MAX_MS)
    ) {
      try {
        await this.fire(schedule, tick);
        return;
      } catch (e) {
        const giveUp = this.stopped || this.now().getTime() + delay >= following;
        this.log[giveUp ? "error" : "warn"](
          "Schedule {key} tick {tick} not fired (attempt {attempt}): {error}{next}",
          {
            key: schedule.key,
            tick: tick.toISOString(),
            attempt,
            error: message(e),
            next: giveUp ? "; the next tick replaces it" : `; trying again in ${delay} ms`,
          },
        );
        if (giveUp || !await this.pause(delay)) return;
      }
    }
  }

  /** Waits `ms`; false when the runner stopped meanwhile. */
  private pause(ms: number): Promise<boolean> {
    return new Promise((resolve) => {
      const wake = () => {
        clearTimeout(timer);
        this.sleepers.delete(wake);
        resolve(!this.stopped);
      };
      const timer = setTimeout(wake, ms);
      this.sleepers.add(wake);
    });
  }

  private arm(schedule: Schedule, cron: Cron): void {
    if (this.stopped) return;
    const next = cron.nextRun(this.now());
    if (!next) return;
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      if (this.now() < next) return this.arm(schedule, cron);
      const firing = this.fireThroughOutage(schedule, cron, next);
      this.inFlight.add(firing);
      firing.finally(() => {
        this.inFlight.delete(firing);
        this.arm(schedule, cron);
      });
    }, Math.min(Math.max(0, next.getTime() - this.now().getTime()), MAX_TIMER_MS));
    this.timers.add(timer);
  }
}

/** Every schedule trigger of the project. */
export function schedulesOf(project: Project, processEnv: Record<string, string>): Schedule[] {
  const schedules: Schedule[] = [];
  for (const workflow of project.workflows.values()) {
    let index = 0;
    for (const trigger of workflow.config.triggers ?? []) {
      if (trigger.type !== "schedule") continue;
      schedules.push({
        key: `${workflow.id}.${index}`,
        workflowId: workflow.id,
        index,
        cron: trigger.config.cron,
        input: trigger.config.input,
        env: triggerEnv(project, workflow, processEnv),
      });
      index++;
    }
  }
  return schedules;
}

/** Ticks strictly between `from` and `to`, counted up to a bound (only for the log line). */
function countTicksBetween(cron: Cron, from: Date, to: Date): number {
  let count = 0;
  let cursor: Date | null = from;
  while (count < 10_000) {
    cursor = cron.nextRun(cursor);
    if (!cursor || cursor.getTime() >= to.getTime()) break;
    count++;
  }
  return count;
}

function isTemplateError(e: unknown): boolean {
  return e instanceof Error && e.name === "TemplateError";
}

function message(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
