/**
 * The engine's metrics as the API process sees them: it listens to the state events on core NATS (no
 * consumer, no acks: a missed event only costs a sample), and on scrape reads queue depths and the durable
 * consumers' backlogs from JetStream and asks every engine for its own figures (ENGINE_STATS_SUBJECT).
 * Only subjects are read, never payloads: the subject says which event it is and for which execution, and
 * decoding every event would slow a busy process down. Task latency is measured between the arrivals of a
 * task's start and end events. Counters count what this process observed since it started, the Prometheus
 * way: use `rate()` on them.
 *
 * @module
 */
import { jetstreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { STREAMS } from "../pkg/nats/provision.ts";
import { type SharedSubscription, subscribeShared } from "../pkg/nats/shared_subscription.ts";
import { subjectFilter } from "../pkg/nats/subjects.ts";
import type { MetricsRegistry } from "./metrics.ts";
import { ACTIVATION_BUCKETS, ENGINE_STATS_SUBJECT, type EngineStatsReport } from "../engine/engine_stats.ts";

/** How long a scrape waits for the engines' reports: the first answers within this, or none counts. */
const ENGINE_STATS_WAIT_MS = 50;
/** After an engine's report, how long another may still come before the scrape goes on without it. */
const ENGINE_STATS_STALL_MS = 10;

/** Task starts remembered while waiting for their end; beyond this the oldest are forgotten. */
const MAX_TRACKED_TASKS = 100_000;

const TERMINAL_EVENTS = new Set(["success", "failed", "canceled", "timed_out"]);

/** The engine's timer consumer (`compozy-task-timers` in engine/domain/workflow/workflow_executor.ts). */
const TIMER_CONSUMER = /-timers$/;

export interface EventMetrics {
  stop(): void;
}

/** Starts feeding `registry` from the EVENTS subjects and the command streams' depths. */
export function collectEngineMetrics(nc: NatsConnection, registry: MetricsRegistry): EventMetrics {
  const executions = registry.counter(
    "compozy_workflow_executions_total",
    "Workflow executions by the status they reached (started counts every start)",
  );
  const running = registry.gauge(
    "compozy_workflow_executions_running",
    "Executions started and not yet ended, as observed since this process started",
  );
  const tasks = registry.counter(
    "compozy_task_executions_total",
    "Task executions by the status they ended in",
  );
  const taskLatency = registry.histogram(
    "compozy_task_duration_seconds",
    "Time from a task attempt's start to its end",
  );
  const queueDepth = registry.gauge("compozy_queue_depth", "Messages waiting in a command stream");
  const consumerPending = registry.gauge(
    "compozy_consumer_pending",
    "Messages a consumer has not yet processed (pending plus unacknowledged); durable timers are counted apart",
  );
  // A timer is a message held unacknowledged until it is due: counted as "pending" it would look like work
  // stuck in a queue, when it is a sleep, a wait's time-out or a retry back-off waiting by design.
  const timersScheduled = registry.gauge(
    "compozy_timers_scheduled",
    "Durable timers not yet due (sleeps, wait time-outs, retry back-offs): waiting by design, not stuck",
  );
  running.set({}, 0);
  const taskStarts = new Map<string, number>();

  const onWorkflow = (subject: string) => {
    const type = subject.split(".")[5];
    if (type === "started") {
      executions.inc({ status: "started" });
      running.add({}, 1);
    } else if (TERMINAL_EVENTS.has(type)) {
      executions.inc({ status: type });
      running.add({}, -1);
    }
  };
  const onTask = (subject: string) => {
    const type = subject.split(".")[5];
    const taskExecId = subject.split(".")[4];
    const time = performance.now();
    if (type === "started") {
      if (taskStarts.size >= MAX_TRACKED_TASKS) taskStarts.delete(taskStarts.keys().next().value!);
      taskStarts.set(taskExecId, time);
    } else if (TERMINAL_EVENTS.has(type)) {
      tasks.inc({ status: type });
      const started = taskStarts.get(taskExecId);
      if (started !== undefined) {
        taskStarts.delete(taskExecId);
        taskLatency.observe({ status: type }, Math.max(0, time - started) / 1000);
      }
    }
  };
  // One subscription per event type counted (a task's dispatch and the rest are not sent here), shared with
  // any other listener of this process on the same connection (the live view of `compozy dev` shows all of
  // these): each event reaches the process once.
  const counted = (component: "workflow" | "task", onEvent: (subject: string) => void) =>
    ["started", ...TERMINAL_EVENTS].map((type) =>
      subscribeShared(nc, subjectFilter({ component, kind: "evts", type }), (err, msg) => {
        if (!err) onEvent(msg.subject);
      })
    );
  const subscriptions: SharedSubscription[] = [
    ...counted("workflow", onWorkflow),
    ...counted("task", onTask),
  ];

  const activeExecutions = registry.gauge(
    "compozy_engine_active_executions",
    "Executions each engine drives right now, by engine instance",
  );
  const activationLatency = registry.histogram(
    "compozy_engine_activation_duration_seconds",
    "Time from an activating command's delivery to a driver ready to run (lease, history, replay)",
    ACTIVATION_BUCKETS,
  );
  const redeliveries = registry.counter(
    "compozy_engine_redeliveries_total",
    "Commands an engine received more than once (a failed handler, or an engine that died)",
  );
  const renewals = registry.counter(
    "compozy_engine_lease_renewals_total",
    "Lease renewals by outcome: held, unconfirmed (NATS did not answer), lost (another engine), expired",
  );
  const takeovers = registry.counter(
    "compozy_engine_takeovers_total",
    "Executions an engine resumed mid-run that it had not driven before (moved from another engine)",
  );

  // Every read of a scrape runs at once: a scrape costs the slowest read, not the sum of them.
  registry.onCollect(async () => {
    const jsm = await jetstreamManager(nc);
    await Promise.all([STREAMS.workflowCommands, STREAMS.taskCommands].map(async (stream) => {
      queueDepth.set({ stream }, (await jsm.streams.info(stream)).state.messages);
    }));
  });
  registry.onCollect(async () => {
    const jsm = await jetstreamManager(nc);
    await Promise.all([STREAMS.workflowCommands, STREAMS.taskCommands, STREAMS.events].map(async (stream) => {
      for await (const consumer of jsm.consumers.list(stream)) {
        // Only the durable consumers the engine works through; a short-lived read consumer is no queue.
        if (!consumer.config.durable_name) continue;
        const gauge = TIMER_CONSUMER.test(consumer.name) ? timersScheduled : consumerPending;
        gauge.set({ stream, consumer: consumer.name }, consumer.num_pending + consumer.num_ack_pending);
      }
    }));
  });
  registry.onCollect(async () => {
    const reports: EngineStatsReport[] = [];
    const replies = await nc.requestMany(ENGINE_STATS_SUBJECT, undefined, {
      strategy: "stall",
      stall: ENGINE_STATS_STALL_MS,
      maxWait: ENGINE_STATS_WAIT_MS,
    });
    for await (const reply of replies) reports.push(reply.json<EngineStatsReport>());
    activeExecutions.clear();
    activationLatency.clear();
    redeliveries.clear();
    takeovers.clear();
    renewals.clear();
    for (const report of reports) {
      const labels = { instance: report.instance };
      activeExecutions.set(labels, report.active_executions);
      activationLatency.setSeries(labels, report.activation_seconds);
      redeliveries.inc(labels, report.redeliveries);
      takeovers.inc(labels, report.taken_over ?? 0);
      for (const [outcome, count] of Object.entries(report.lease_renewals ?? {})) {
        renewals.inc({ ...labels, outcome }, count);
      }
    }
  });

  return { stop: () => subscriptions.forEach((s) => s.unsubscribe()) };
}
