/**
 * The engine's metrics as the API process sees them: it listens to the state events on core NATS (no
 * consumer, no acks: a missed event only costs a sample) and reads queue depths from JetStream on scrape.
 * Only subjects are read, never payloads: the subject says which event it is and for which execution, and
 * decoding every event would slow a busy process down. Task latency is measured between the arrivals of a
 * task's start and end events. Counters count what this process observed since it started, the Prometheus
 * way: use `rate()` on them.
 *
 * @module
 */
import { jetstreamManager } from "@nats-io/jetstream";
import type { NatsConnection, Subscription } from "@nats-io/transport-node";
import { STREAMS } from "../pkg/nats/provision.ts";
import { subjectFilter } from "../pkg/nats/subjects.ts";
import type { MetricsRegistry } from "./metrics.ts";

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
  const subscriptions: Subscription[] = [
    nc.subscribe(subjectFilter({ component: "workflow", kind: "evts" }), {
      callback: (err, msg) => {
        if (!err) onWorkflow(msg.subject);
      },
    }),
    nc.subscribe(subjectFilter({ component: "task", kind: "evts" }), {
      callback: (err, msg) => {
        if (!err) onTask(msg.subject);
      },
    }),
  ];

  registry.onCollect(async () => {
    const jsm = await jetstreamManager(nc);
    for (const stream of [STREAMS.workflowCommands, STREAMS.taskCommands]) {
      const info = await jsm.streams.info(stream);
      queueDepth.set({ stream }, info.state.messages);
    }
    for (const stream of [STREAMS.workflowCommands, STREAMS.taskCommands, STREAMS.events]) {
      for await (const consumer of jsm.consumers.list(stream)) {
        const gauge = TIMER_CONSUMER.test(consumer.name) ? timersScheduled : consumerPending;
        gauge.set({ stream, consumer: consumer.name }, consumer.num_pending + consumer.num_ack_pending);
      }
    }
  });

  return { stop: () => subscriptions.forEach((s) => s.unsubscribe()) };
}
