/**
 * The engine: orchestrator, workflow executor (with its task execution) and state manager in one process.
 * Several engine processes may share one NATS: JetStream consumers and leases share the work.
 *
 * @example
 * ```ts
 * const engine = await startEngine({ nc, bus, project, instanceId: "engine-1" });
 * const { execId } = await engine.client.trigger("hello", { name: "Ada" });
 * ```
 */
import { jetstream, type JetStreamManager, jetstreamManager } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import type { NatsConnection, Subscription } from "@nats-io/transport-node";
import { BUCKETS, type Bus } from "../pkg/nats/mod.ts";
import type { ExecutionClient } from "./client.ts";
import type { Project } from "./domain/project/mod.ts";
import { positiveMsFromEnv } from "../pkg/utils/env_number.ts";
import { sandboxStartTimeoutMsFromEnv } from "../pkg/runtime/settings_env.ts";
import {
  DEFAULT_RUNTIME_CALL_TIMING,
  type RuntimeCallTiming,
  SILENT_AFTER_MS,
} from "./domain/task/runtime_call.ts";
import { SANDBOX_WAIT_ALLOWANCE_MS } from "./domain/task/leaf_executor.ts";
import { createDriverServices } from "./domain/workflow/services.ts";
import { DroppedSignals } from "./dropped_signals.ts";
import { type RedeliveryBounds, WorkflowExecutor } from "./domain/workflow/workflow_executor.ts";
import { failDefinitionChanged } from "./domain/workflow/definition_drift.ts";
import { failOrphan } from "./domain/workflow/orphans.ts";
import { notifyParent } from "./domain/workflow/parent_notifier.ts";
import { NatsExecutionClient } from "./execution_client.ts";
import { AcceptedExecutions } from "./accepted_executions.ts";
import { ENGINE_STATS_SUBJECT, EngineStats, type EngineStatsReport } from "./engine_stats.ts";
import { Leases } from "./leases.ts";
import { EnginePresence, type Presence } from "./engine_presence.ts";
import { Orchestrator } from "./orchestrator.ts";
import { StateManager } from "./state/state_manager.ts";
import { TakeOverCheck } from "./state/take_over_check.ts";
import { StateStore } from "./state/state_store.ts";

export * from "./client.ts";
export * from "./errors.ts";
export * from "./state/execution_state.ts";

/** The core NATS subject the engine answers while it is consuming (see docs/operations.md). */
export const ENGINE_HEALTH_SUBJECT = "compozy.health.engine";

export interface EngineOptions {
  nc: NatsConnection;
  bus: Bus;
  project: Project;
  /** Stable across restarts of the same engine, so it takes its own leases back at once. */
  instanceId: string;
  /**
   * How long a command or state event held by an engine that died waits before it is redelivered; default
   * COMPOZY_ACK_WAIT_MS, else 3 s for workflow commands (an engine's executions resume that soon after its
   * death) and 5 s for state events (STATE_ACK_WAIT_MS). Shorter recovers sooner and costs more heartbeats (three per ack wait
   * for each command held). See docs/operations.md, "Fail-over".
   */
  ackWaitMs?: number;
  /**
   * How long the runtime holding a tool or agent call may answer none of the engine's questions before the
   * call is sent again elsewhere; default COMPOZY_RUNTIME_SILENT_AFTER_MS, else SILENT_AFTER_MS (10 s). See
   * docs/operations.md, "Fail-over".
   */
  runtimeSilentAfterMs?: number;
  /**
   * The runtimes' sandbox start timeout, when raised above the engine's allowance for a call's wait for a
   * sandbox (SANDBOX_WAIT_ALLOWANCE_MS, 60 s); default COMPOZY_SANDBOX_START_TIMEOUT_MS, the runtime's own
   * variable. The engine waits for a call's answer its limit, plus the larger of its limit and this allowance,
   * plus 5 s (runtimeAnswerDeadlineMs in engine/domain/task/leaf_executor.ts). See docs/operations.md.
   */
  sandboxStartTimeoutMs?: number;
  /** How often each cause may send a command back before it is given up (defaults in the executor). */
  redelivery?: Partial<RedeliveryBounds>;
  /**
   * How long an execution's end may take to show in its state before the engine writes it from the history;
   * default CATCH_UP_AFTER_MS (engine/state/end_catch_up.ts).
   */
  stateCatchUpMs?: number;
  /**
   * How other engines' presence is asked before their leases are taken; default EnginePresence (a core request
   * to each). Tests stand in one that answers slowly.
   */
  presence?: Presence;
}

export interface EngineHandle {
  client: ExecutionClient;
  /** The execution state this engine folds and reads. */
  store: StateStore;
  /** Executions this engine drives right now. */
  activeExecutions(): number;
  stop(): Promise<void>;
}

/** Builds an ExecutionClient for a process that runs no engine (e.g. an API-only role). */
export async function createExecutionClient(
  { nc, bus, project }: Pick<EngineOptions, "nc" | "bus" | "project">,
): Promise<ExecutionClient> {
  const store = await openStateStore(nc);
  return new NatsExecutionClient(bus, jetstream(nc), store, project);
}

/**
 * The engine's timings set through the environment (unset ones are undefined: the defaults apply). Throws
 * EnvSettingError, naming the variable, on a bad value; a process calls it before it starts anything.
 */
export function engineTimingsFromEnv(): Pick<
  EngineOptions,
  "ackWaitMs" | "runtimeSilentAfterMs" | "sandboxStartTimeoutMs"
> {
  return {
    ackWaitMs: positiveMsFromEnv("COMPOZY_ACK_WAIT_MS"),
    runtimeSilentAfterMs: positiveMsFromEnv("COMPOZY_RUNTIME_SILENT_AFTER_MS"),
    sandboxStartTimeoutMs: sandboxStartTimeoutMsFromEnv(),
  };
}

/** Opens the state buckets (a process that folds or reads execution state). */
export async function openStateStore(nc: NatsConnection): Promise<StateStore> {
  const kvm = new Kvm(nc);
  const jsm = await jetstreamManager(nc);
  const open = async (name: string) => {
    const { kv, direct, replicas } = await openBucket(kvm, jsm, name);
    return { kv, name, direct, replicas };
  };
  const buckets = {
    workflows: await open(BUCKETS.workflowExecutions),
    tasks: await open(BUCKETS.taskExecutions),
    waiting: await open(BUCKETS.waiting),
    index: await open(BUCKETS.executionIndex),
    children: await open(BUCKETS.children),
  };
  return new StateStore(buckets, jsm);
}

/**
 * Opens a bucket for direct reads where they cannot be stale: a bucket of one replica. A direct get is
 * answered by the stream itself (no JSON request or base64 answer through the JetStream API); nats.js
 * binds a bucket without them unless told. With replicas, a follower may answer a direct get before it
 * has a write the leader acknowledged, so those buckets are read through the API (from the leader).
 */
async function openBucket(kvm: Kvm, jsm: JetStreamManager, name: string) {
  const config = (await jsm.streams.info(`KV_${name}`)).config;
  const direct = config.allow_direct === true && config.num_replicas === 1;
  return { kv: await kvm.open(name, { allow_direct: direct }), direct, replicas: config.num_replicas };
}

/**
 * The default ack wait of workflow commands: an engine that dies holding an execution gives it up this long
 * after its last heartbeat (sent every third of it), and another engine, seeing the holder gone, takes the
 * lease at once (see EnginePresence). A command held past it by a live engine whose event loop stalled is
 * redelivered to another engine that finds the lease still held and hands it back: it costs a redelivery,
 * never a move.
 */
const COMMAND_ACK_WAIT_MS = 3_000;

export async function startEngine(options: EngineOptions): Promise<EngineHandle> {
  const { nc, bus, project } = options;
  const js = jetstream(nc);
  const kvm = new Kvm(nc);
  const store = await openStateStore(nc);
  const leaseKv = await kvm.open(BUCKETS.leases);
  const presence = new EnginePresence(nc);
  const leases = new Leases(
    leaseKv,
    options.instanceId,
    (await leaseKv.status()).ttl,
    options.presence ?? presence,
    js,
  );
  const accepted = new AcceptedExecutions();
  const orchestrator = new Orchestrator(bus, project, await kvm.open(BUCKETS.idempotency), store, accepted);
  const fromEnv = engineTimingsFromEnv();
  const ackWaitMs = options.ackWaitMs ?? fromEnv.ackWaitMs;
  const runtimeCallTiming: RuntimeCallTiming = {
    ...DEFAULT_RUNTIME_CALL_TIMING,
    silentAfterMs: options.runtimeSilentAfterMs ?? fromEnv.runtimeSilentAfterMs ?? SILENT_AFTER_MS,
  };
  const stateManager = new StateManager(bus, store, {
    ackWaitMs,
    takeOvers: new TakeOverCheck(await jetstreamManager(nc)),
    leases,
    catchUpAfterMs: options.stateCatchUpMs,
  });
  const stats: EngineStats = new EngineStats(options.instanceId, () => executor.activeCount);
  const executor: WorkflowExecutor = new WorkflowExecutor({
    project,
    bus,
    js,
    leases,
    services: createDriverServices(
      bus,
      project,
      store,
      new DroppedSignals(await kvm.open(BUCKETS.droppedSignals)),
      leases,
      runtimeCallTiming,
      Math.max(
        SANDBOX_WAIT_ALLOWANCE_MS,
        options.sandboxStartTimeoutMs ?? fromEnv.sandboxStartTimeoutMs ?? 0,
      ),
    ),
    ackWaitMs: ackWaitMs ?? COMMAND_ACK_WAIT_MS,
    redelivery: options.redelivery,
    accepted,
    stats,
    onEnded: (ended) => notifyParent(bus, ended),
    catchUpEnd: (execId, correlationId) => stateManager.catchUpEnd(execId, correlationId),
    onOrphan: (execId, correlationId, workflowId) => failOrphan(bus, execId, correlationId, workflowId),
    onTaskUndeclared: (execId, correlationId, workflowId, taskKey) =>
      failDefinitionChanged(bus, execId, correlationId, workflowId, taskKey),
  });
  const present = presence.answer(options.instanceId);
  orchestrator.start();
  try {
    await stateManager.start();
    await executor.start();
  } catch (e) {
    // JetStream did not answer (a node failing over): stop what started, so that a start tried again
    // (cli/stack.ts) does not run two of each.
    orchestrator.stop();
    await executor.stop();
    await stateManager.stop();
    present.unsubscribe();
    throw e;
  }
  watchConnection(nc, leases);
  const health: Subscription = nc.subscribe(ENGINE_HEALTH_SUBJECT, {
    callback: (_err, msg) => {
      msg.respond(new TextEncoder().encode(JSON.stringify({ ok: true, instance: options.instanceId })));
    },
  });
  const statsReplies: Subscription = nc.subscribe(ENGINE_STATS_SUBJECT, {
    callback: (_err, msg) => {
      const { inMsgs, outMsgs } = nc.stats();
      const report: EngineStatsReport = { ...stats.report(), nats_messages: { in: inMsgs, out: outMsgs } };
      msg.respond(new TextEncoder().encode(JSON.stringify(report)));
    },
  });
  return {
    client: new NatsExecutionClient(bus, js, store, project),
    store,
    activeExecutions: () => executor.activeCount,
    async stop() {
      health.unsubscribe();
      statsReplies.unsubscribe();
      orchestrator.stop();
      await executor.stop();
      await stateManager.stop();
      // Last: until now this engine may still write for the executions it drives, so no other engine may
      // take their leases as those of a gone engine.
      present.unsubscribe();
    },
  };
}

/**
 * While the connection is down, another engine may see this one as gone and take its leases: every lease
 * stops being writable until a renewal confirms it (Leases.suspendAll).
 */
async function watchConnection(nc: NatsConnection, leases: Leases): Promise<void> {
  for await (const status of nc.status()) {
    if (status.type === "disconnect") leases.suspendAll();
  }
}
