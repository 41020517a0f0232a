/**
 * The engine's metrics as the API process sees them: it listens to the state events on core NATS (no
 * consumer, no acks: a missed event only costs a sample) and reads queue depths from JetStream on scrape.
 * Counters count what this process observed since it started, the Prometheus way: use `rate()` on them.
 *
 * @module
 */
import { timestampMs } from "@bufbuild/protobuf/wkt";
import { jetstreamManager } from "@nats-io/jetstream";
import type { Subscription } from "@nats-io/transport-node";
import type { Bus } from "../pkg/nats/bus.ts";
import { STREAMS } from "../pkg/nats/provision.ts";
import { subjectFilter } from "../pkg/nats/subjects.ts";
import type { Metadata } from "../pkg/pb/common_pb.ts";
import type { MetricsRegistry } from "./metrics.ts";

/** Task starts remembered while waiting for their end; beyond this the oldest are forgotten. */
const MAX_TRACKED_TASKS = 100_000;

const TERMINAL_EVENTS = new Set(["success", "failed", "canceled", "timed_out"]);

export interface EventMetrics {
  stop(): void;
}

/** Starts feeding `registry` from the EVENTS subjects and the command streams' depths. */
export function collectEngineMetrics(bus: Bus, registry: MetricsRegistry): EventMetrics {
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
    "Messages a consumer has not yet processed (pending plus unacknowledged)",
  );
  running.set({}, 0);
  const taskStarts = new Map<string, number>();

  const onWorkflow = (_message: unknown, subject: string) => {
    const type = subject.split(".")[5];
    if (type === "started") {
      executions.inc({ status: "started" });
      running.add({}, 1);
    } else if (TERMINAL_EVENTS.has(type)) {
      executions.inc({ status: type });
      running.add({}, -1);
    }
  };
  const onTask = (message: unknown, subject: string) => {
    const type = subject.split(".")[5];
    const taskExecId = subject.split(".")[4];
    const time = eventTimeMs(message);
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
    bus.subscribe(subjectFilter({ component: "workflow", kind: "evts" }), onWorkflow),
    bus.subscribe(subjectFilter({ component: "task", kind: "evts" }), onTask),
  ];

  registry.onCollect(async () => {
    const jsm = await jetstreamManager(bus.nc);
    for (const stream of [STREAMS.workflowCommands, STREAMS.taskCommands]) {
      const info = await jsm.streams.info(stream);
      queueDepth.set({ stream }, info.state.messages);
    }
    for (const stream of [STREAMS.workflowCommands, STREAMS.taskCommands, STREAMS.events]) {
      for await (const consumer of jsm.consumers.list(stream)) {
        consumerPending.set(
          { stream, consumer: consumer.name },
          consumer.num_pending + consumer.num_ack_pending,
        );
      }
    }
  });

  return { stop: () => subscriptions.forEach((s) => s.unsubscribe()) };
}

function eventTimeMs(message: unknown): number {
  const metadata = (message as { metadata?: Metadata }).metadata;
  return metadata?.time ? timestampMs(metadata.time) : Date.now();
}
