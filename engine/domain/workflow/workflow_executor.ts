/**
 * The workflow executor: consumes the workflow command stream (execute, cancel, pause, resume, signal) and
 * the task timer stream (TaskResume), and drives each execution with an ExecutionDriver while it holds the
 * execution's lease. The command that activated an execution stays unacknowledged (its ack deadline
 * extended) until the execution ends or parks, so if this process dies the command is redelivered and
 * another engine (or this one, restarted) replays the execution from its history.
 */
import type { DescMessage, MessageShape } from "@bufbuild/protobuf";
import type { JetStreamClient } from "@nats-io/jetstream";
import { create } from "@bufbuild/protobuf";
import type { Bus, Consumer, Delivery, Outcome as BusOutcome } from "../../../pkg/nats/mod.ts";
import { encode, schemaOf, STREAMS, subjectOf } from "../../../pkg/nats/mod.ts";
import { WorkflowExecutionFailedSchema, WorkflowExecutionTakenOverSchema } from "../../../pkg/pb/mod.ts";
import { getLogger } from "../../../pkg/logger/mod.ts";
import { droppedBefore, logDroppedSignal } from "./dropped_signal_log.ts";
import { DroppedSignalStoreError } from "../../dropped_signals.ts";
import type * as pb from "../../../pkg/pb/mod.ts";
import { readExecutionEvents, readExecutionEventsAfter } from "../../history/read_history.ts";
import {
  copyMayEnd,
  foldReplayState,
  type ReplayState,
  replayStateOfExecute,
} from "../../history/replay_state.ts";
import { parseJsonBytes } from "../../json_bytes.ts";
import type { AcceptedExecutions } from "../../accepted_executions.ts";
import type { EngineStats } from "../../engine_stats.ts";
import type { Leases } from "../../leases.ts";
import type { EndedExecution } from "./parent_notifier.ts";
import {
  isApplied,
  parentCancelReason,
  type PendingControls,
  pendingControls,
  removeApplied,
} from "./pending_controls.ts";
import type { Project } from "../project/mod.ts";
import { openTaskNotDeclared } from "./definition_drift.ts";
import type { DriverServices } from "./driver_services.ts";
import { type DriverResult, ExecutionDriver } from "./execution_driver.ts";

const log = getLogger(["engine", "executor"]);

export interface WorkflowExecutorOptions {
  project: Project;
  bus: Bus;
  js: JetStreamClient;
  leases: Leases;
  services: DriverServices;
  /** Redelivery delay of an activating command whose engine died; default 30 s. */
  ackWaitMs?: number;
  /** Executions this process's orchestrator accepted (see AcceptedExecutions). */
  accepted?: AcceptedExecutions;
  /** Called for an execution whose workflow is not in the loaded project: it can only be failed. */
  onOrphan?: (execId: string, correlationId: string, workflowId: string) => Promise<void>;
  /** Called for an execution with an open task its loaded workflow no longer declares: it can only be failed. */
  onTaskUndeclared?: (
    execId: string,
    correlationId: string,
    workflowId: string,
    taskKey: string,
  ) => Promise<void>;
  /** Activation latencies and redeliveries, reported to `/api/metrics`. */
  stats?: EngineStats;
  /** Called after an execution ends, with its driver (e.g. to notify a parent workflow). */
  onEnded?: (ended: EndedExecution) => Promise<void>;
  /**
   * Resolves once the state shows the end of an execution whose history ended, written from the history when
   * it did not in time (end_catch_up.ts): called before the command that saw the end is acknowledged, so that
   * a check that fails, or an engine that dies first, leaves the command to come back and check again.
   */
  catchUpEnd?: (execId: string, correlationId: string) => Promise<void>;
  /** How often each cause may send a command back (see RedeliveryBounds). */
  redelivery?: Partial<RedeliveryBounds>;
}

/**
 * How many times a command may come back for each cause before it is given up: the execution is recorded
 * FAILED with the reason, then the command goes to the DLQ. A timer held until it is due is no redelivery.
 */
export interface RedeliveryBounds {
  /** Another engine holds the execution's lease (it drives it; 250 ms to 5 s apart). */
  leaseBusy: number;
  /** The execution's history could not be written (NATS unavailable; 1 s apart). */
  abandoned: number;
  /** Handling the command threw (its history could not be read, its payload is unreadable...). */
  failed: number;
}

const DEFAULT_REDELIVERY: RedeliveryBounds = { leaseBusy: 1_000, abandoned: 600, failed: 20 };

type Cause = keyof RedeliveryBounds;

interface Active {
  driver: ExecutionDriver;
  /** The message that activated the driver (see deliveryKey): its copies are held, never acknowledged early. */
  activatedBy?: string;
  /** Controls accepted before this activation and not handled yet: they come first (pending_controls.ts). */
  controls?: PendingControls;
  /** Resolves when the driver ends, parks or is abandoned. */
  settled?: Promise<DriverResult>;
}

type Command = MessageShape<DescMessage> & {
  metadata?: pb.Metadata;
  workflow?: pb.WorkflowInfo;
  task?: pb.TaskInfo;
};

export class WorkflowExecutor {
  private readonly active = new Map<string, Active>();
  private readonly activating = new Map<string, Promise<Active | undefined>>();
  private readonly consumers: Consumer[] = [];
  private readonly ackWaitMs: number;
  /** How often a command being handled is heartbeated: three times per ack wait (at most 15 s apart). */
  private readonly heartbeatMs: number;
  private readonly bounds: RedeliveryBounds;
  /** Redeliveries so far by cause, per command in flight (by stream and sequence). */
  private readonly redeliveries = new Map<string, Record<Cause, number>>();
  /** Executions activated here lately: resuming one of the others mid-run is a take-over. */
  private readonly drivenHere = new RecentIds(10_000);

  constructor(private readonly options: WorkflowExecutorOptions) {
    this.ackWaitMs = options.ackWaitMs ?? 30_000;
    this.heartbeatMs = Math.max(250, Math.min(this.ackWaitMs, 15_000) / 3);
    this.bounds = { ...DEFAULT_REDELIVERY, ...options.redelivery };
  }

  get activeCount(): number {
    return this.active.size;
  }

  async start(): Promise<void> {
    const common = { ackWaitMs: this.ackWaitMs, maxAckPending: 50_000, batch: 256 };
    // Each kept once it runs: a start that fails half-way (JetStream did not answer) stops the first one.
    this.consumers.push(
      await this.options.bus.consume({
        ...common,
        stream: STREAMS.workflowCommands,
        durable: "compozy-workflow-executor",
        handler: (m, d) => this.bounded(STREAMS.workflowCommands, m as Command, d, this.onWorkflowCommand),
      }),
    );
    this.consumers.push(
      await this.options.bus.consume({
        ...common,
        stream: STREAMS.taskCommands,
        durable: "compozy-task-timers",
        handler: (m, d) =>
          this.bounded(
            STREAMS.taskCommands,
            m as MessageShape<typeof pb.TaskResumeSchema>,
            d,
            this.onTaskResume,
          ),
      }),
    );
  }

  async stop(): Promise<void> {
    for (const consumer of this.consumers.splice(0)) await consumer.stop();
  }

  /**
   * Runs a command's handler and bounds each cause of its redelivery: past its bound, the execution is recorded
   * FAILED with the reason and the command is dead-lettered (never lost, never looping).
   */
  private async bounded<M extends Command>(
    stream: string,
    message: M,
    delivery: Delivery,
    handler: (message: M, delivery: Delivery) => Promise<Outcome | void>,
  ): Promise<Outcome | void> {
    const id = `${stream}:${delivery.streamSequence}`;
    let outcome: Outcome | void = undefined;
    let cause: Cause | undefined;
    let reason = "";
    let ended = false;
    try {
      outcome = await handler.call(this, message, delivery);
      if (outcome && "cause" in outcome) ({ cause, reason } = outcome);
    } catch (e) {
      cause = "failed";
      reason = e instanceof Error ? e.message : String(e);
      ended = e instanceof EndNotInStateError;
    }
    if (!cause) {
      if (!outcome || !("nakDelayMs" in outcome)) this.redeliveries.delete(id);
      return outcome;
    }
    const counts = this.redeliveries.get(id) ?? { leaseBusy: 0, abandoned: 0, failed: 0 };
    this.redeliveries.set(id, counts);
    const count = ++counts[cause];
    if (count <= this.bounds[cause]) {
      log.debug("command {subject} comes back ({cause} {count}/{bound}): {reason}", {
        subject: delivery.subject,
        cause,
        count,
        bound: this.bounds[cause],
        reason,
      });
      return { nakDelayMs: redeliveryDelay(cause, count) };
    }
    this.redeliveries.delete(id);
    return await this.giveUp(
      message,
      delivery,
      `${CAUSE_TEXT[cause]} (${count - 1} times): ${reason}`,
      ended,
    );
  }

  /**
   * Records the execution FAILED with the reason, then dead-letters the command. `ended`: its history holds
   * an end already (only its state's check failed), so no second end is recorded: a FAILED after its
   * SUCCESS, folded by a state that had missed the first end, would have shown the execution failed.
   */
  private async giveUp(
    message: Command,
    delivery: Delivery,
    reason: string,
    ended = false,
  ): Promise<Outcome> {
    const execId = message.workflow?.execId ?? "";
    log.error("command {subject} of {execId} given up: {reason}", {
      subject: delivery.subject,
      execId,
      reason,
    });
    if (execId && !ended) {
      await this.options.bus.publish(create(WorkflowExecutionFailedSchema, {
        metadata: this.options.bus.metadata(message.metadata?.correlationId || execId, `${execId}:failed`),
        workflow: { id: message.workflow?.id ?? "", execId },
        error: { message: `a command could not be processed: ${reason}`, code: "command_failed" },
      }));
    }
    await this.options.bus.deadLetter(delivery.subject, encode(schemaOf(message.$typeName), message), reason);
    return { term: reason };
  }

  private async onWorkflowCommand(message: Command, delivery: Delivery): Promise<Outcome | void> {
    this.options.stats?.countDelivery(delivery.deliveryCount);
    const execId = message.workflow?.execId ?? "";
    const correlationId = message.metadata?.correlationId ?? execId;
    switch (message.$typeName) {
      case "compozy.v1.WorkflowExecute": {
        const execute = message as MessageShape<typeof pb.WorkflowExecuteSchema>;
        // Accepted here and never activated: a fresh execution, with no history to read (if activate finds
        // that no other engine held it meanwhile: one that gave its command back within the ack wait may have).
        const fresh = this.options.accepted?.take(execId, Math.min(this.ackWaitMs, this.options.leases.ttlMs))
          ? replayStateOfExecute(execute)
          : undefined;
        // A redelivered execute command for a running execution (its heartbeats were lost, e.g. while NATS
        // restarted) is held like the original until the execution ends or parks, never acknowledged early.
        return await this.withExecution(execId, correlationId, delivery, fresh, () => {}, true);
      }
      case "compozy.v1.WorkflowCancel": {
        const reason = (message as MessageShape<typeof pb.WorkflowCancelSchema>).reason || "canceled";
        return await this.withExecution(execId, correlationId, delivery, undefined, (d) => d.cancel(reason));
      }
      // A pause or resume given to a running driver is held until it parks or ends: the command that activated
      // it may be an earlier resume or pause, kept unacknowledged meanwhile (G13), and acknowledged at once this
      // one left that earlier control the only one pending when the engine died: it came back and undid this one.
      case "compozy.v1.WorkflowPause":
        return await this.withExecution(execId, correlationId, delivery, undefined, (d) => d.pause(), true);
      case "compozy.v1.WorkflowResume":
        return await this.withExecution(execId, correlationId, delivery, undefined, (d) => d.resume(), true);
      case "compozy.v1.WorkflowSignal": {
        const signal = message as MessageShape<typeof pb.WorkflowSignalSchema>;
        const target = { execId, correlationId, workflowId: message.workflow?.id };
        let payload: unknown;
        try {
          payload = parseJsonBytes(signal.payloadJson);
        } catch (e) {
          // An unreadable signal is a non-match: nothing could accept it, so it is dropped, with the reason.
          logDroppedSignal(
            "warn",
            target,
            signal.signalId,
            `its payload is not JSON (${e instanceof Error ? e.message : String(e)})`,
          );
          return;
        }
        // A payload a wait's record could not carry is refused at once, before anything is written.
        const room = this.options.bus.maxBody() - SIGNAL_RECORD_ROOM;
        if (signal.payloadJson.length > room) {
          logDroppedSignal(
            "warn",
            target,
            signal.signalId,
            `its payload of ${signal.payloadJson.length} bytes is over the ${room} bytes a wait's record may carry`,
          );
          return;
        }
        return await this.withExecution(
          execId,
          correlationId,
          delivery,
          undefined,
          async (d) => {
            await d.deliverSignal(signal.signalId, payload, signal.metadata?.eventId || undefined);
          },
          false,
          // A parked execution none of whose recorded waits listens for this signal cannot take it: it is
          // dropped without a take-over (outside review F3's rest: each such signal appended one).
          // A signal that ended one of its waits (the same payload) in an execution that has not ended is not
          // moot either: it may be this very signal, delivered before an engine that took it died, and come
          // back as a first delivery (a nats-server killed with its engine loses the count; outside review
          // B2): dropped, nothing drove the execution again. Its activation replays it (a duplicate costs one
          // replay; the driver drops the signal, no wait takes it).
          async (seen) => {
            const records = [...seen.tasks.values()];
            // A copy of a message a wait took already (sent again past the duplicate window, or delivered
            // again after the engine that took it died) is a signal only for the waits that were open when it
            // was first taken and have not recorded taking it (their engine stopped first); for any other
            // wait the driver would drop it (deliverSignal), so it activates nothing then.
            const messageId = signal.metadata?.eventId || undefined;
            const taken = messageId ? seen.takenSignals.get(messageId) : undefined;
            const waits = records.some((r) =>
              taken ? copyMayEnd(taken, r) : r.status === "waiting" && r.waitingFor === signal.signalId
            );
            // A copy of a message whose first arrival no wait took (see DroppedSignalLog): a wait that opened
            // since must not take it, so it activates nothing.
            if (
              waits && !taken && messageId &&
              await this.options.services.droppedSignals.has(execId, messageId)
            ) {
              logDroppedSignal("info", target, signal.signalId, droppedBefore(messageId));
              return false;
            }
            const copy = taken !== undefined && !waits;
            // Only while nothing is parked (no wait, sleep, sub-workflow or back-off open): the execution was
            // mid-step when its engine died. A parked one has a wake-up of its own coming, and a sender's
            // retry of a signal already taken wrote a take-over into it each time (outside review B6).
            const parked = records.some((r) => r.status === "waiting" || r.status === "retry_scheduled");
            const took = !waits && !seen.ended && !parked &&
              records.some((r) =>
                r.waitingFor === signal.signalId && r.status !== "waiting" &&
                JSON.stringify(r.wakePayload) === JSON.stringify(payload)
              );
            if (!waits && !took) {
              const reason = copy
                ? `a wait took this very message (${messageId}) already: it is a copy sent again`
                : "no wait of it listens for it";
              logDroppedSignal("info", target, signal.signalId, reason);
              // Its fate is fixed here, at its first arrival: a wait that opens later must not take a copy.
              if (messageId && !copy) await this.options.services.droppedSignals.record(execId, messageId);
            }
            return waits || took;
          },
        );
      }
    }
  }

  private async onTaskResume(
    message: MessageShape<typeof pb.TaskResumeSchema>,
    delivery: Delivery,
  ): Promise<Outcome | void> {
    this.options.stats?.countDelivery(delivery.deliveryCount);
    const due = Number(message.dueUnixMs);
    const wait = due - Date.now();
    // A durable timer: the message comes back when it is due.
    if (wait > 0) return { nakDelayMs: Math.min(wait, 3_600_000) };
    const execId = message.workflow?.execId ?? "";
    const correlationId = message.metadata?.correlationId ?? execId;
    const payload = parseJsonBytes(message.payloadJson);
    return await this.withExecution(execId, correlationId, delivery, undefined, (d) => {
      // Acknowledged once the wake-up is recorded (deliverResume resolves then).
      // A timer happened at its due time, however late it is delivered (a child's end carries none: now).
      return d.deliverResume(message.task?.execId ?? "", message.reason, payload, due > 0 ? due : Date.now());
    });
  }

  /**
   * Runs `act` on the execution's driver: the active one, or a new one replayed from history while this
   * command holds the lease. Returns when the command's effect is durable (or it is known to be moot).
   *
   * The command is heartbeated (three times per ack wait) for as long as this runs: while the execution is
   * activated too (a lease claim that asks whether its holder is gone, a history read, a take-over, the
   * pending controls), which at load outlasted the ack wait and had the command delivered again meanwhile.
   */
  private async withExecution(
    execId: string,
    correlationId: string,
    delivery: Delivery,
    fresh: ReplayState | undefined,
    act: (driver: ExecutionDriver) => Promise<void> | void,
    holdWhileActive = false,
    needed?: (seen: ReplayState) => boolean | Promise<boolean>,
  ): Promise<Outcome | void> {
    const heartbeat = setInterval(() => delivery.working(), this.heartbeatMs);
    try {
      return await this.withExecutionHeld(
        execId,
        correlationId,
        delivery,
        fresh,
        act,
        holdWhileActive,
        needed,
      );
    } finally {
      clearInterval(heartbeat);
    }
  }

  private async withExecutionHeld(
    execId: string,
    correlationId: string,
    delivery: Delivery,
    fresh: ReplayState | undefined,
    act: (driver: ExecutionDriver) => Promise<void> | void,
    holdWhileActive: boolean,
    needed?: (seen: ReplayState) => boolean | Promise<boolean>,
  ): Promise<Outcome | void> {
    const existing = this.active.get(execId) ?? await this.activating.get(execId);
    // Parked elsewhere, or an activation that found another command moot: this one tries again shortly.
    if (existing === YIELDED || existing === MOOT) return { nakDelayMs: PARKED_YIELD_DELAY_MS };
    if (existing && existing !== NOTHING_TO_DO) {
      // Parked, and not yet let go (handlers interleave with its end): the next activation takes this command.
      if (existing.driver.isParked) return { nakDelayMs: PARKED_YIELD_DELAY_MS };
      // The activating message delivered again to this engine (it missed the heartbeats past the ack wait: a
      // loaded or starting process): its effect is the activation's, and its acknowledgement would take the
      // activation's hold out of the work queue. Acknowledged while the driver ran, a signal's copy (found moot:
      // the activation had taken its wait) left nothing to redeliver when the engine died, and the execution
      // stayed RUNNING for good (model seed 121065). It is held like the original instead.
      const copy = existing.activatedBy === deliveryKey(delivery);
      if (copy && !existing.settled) return { nakDelayMs: PARKED_YIELD_DELAY_MS }; // Not running yet.
      // A pause or resume the activation applied among its pending controls (delivered meanwhile) is done:
      // applied again after a later one, it would undo it.
      const applied = isApplied(existing.controls, delivery.subject, delivery.streamSequence);
      if (!copy && !applied) await act(existing.driver);
      // An execution that is ending (this command's doing or another's) is done with this command once its
      // end is stored: a copy of the command that ends it (delivered again after a stall past the ack wait),
      // acknowledged before, took the message out of the work queue, and when the end was then given up
      // nothing drove the execution again; a child's later cancels were dropped as duplicates of it (model
      // finding G10, seed 90033). The activating command's hold refreshes the lease; this one only keeps its
      // message.
      if ((holdWhileActive || copy || existing.driver.isEnded) && existing.settled) {
        const result = await this.hold(execId, existing.driver, existing.settled, false);
        if (result === "abandoned") return abandonedOutcome(existing.driver);
      }
      return;
    }
    if (existing === NOTHING_TO_DO) return;
    const activationStarted = performance.now();
    const activation = this.activate(execId, correlationId, fresh, delivery, needed);
    this.activating.set(execId, activation);
    let active: Active | undefined;
    try {
      active = await activation;
    } finally {
      this.activating.delete(execId);
    }
    // Parked by another engine, which is there: it goes back to that engine (the next pull of either).
    if (active === YIELDED) return { nakDelayMs: PARKED_YIELD_DELAY_MS };
    // Another engine drives it: try again shortly.
    if (active === undefined) return { nakDelayMs: 250, cause: "leaseBusy", reason: "the lease is held" };
    if (active === NOTHING_TO_DO || active === MOOT) return;
    this.options.stats?.observeActivation((performance.now() - activationStarted) / 1_000);
    const { controls } = active;
    // A pending pause or resume is applied before the replay runs (it sets the gate at once, then records).
    const applying = controls?.cancel === undefined && controls?.paused !== undefined
      ? (controls.paused ? active.driver.pause() : active.driver.resume())
      : undefined;
    // This command may be one of them (a pause or resume that activated the driver): applied with them, and
    // never removed with them, since it is what holds the execution until it parks or ends. Removed, the flow
    // a resume restarted ran on under no held command, and an engine's death left it RUNNING for good (model
    // seed 1141139, finding G13). A pause they supersede (a later resume) is not applied after them either.
    const own = applying !== undefined && isApplied(controls, delivery.subject, delivery.streamSequence);
    const others = (controls?.applied ?? []).filter((m) => !own || m.seq !== delivery.streamSequence)
      .map((m) => m.seq);
    const settled = active.driver.run(controls?.cancel);
    active.settled = settled;
    // The lease renewed from now on: the command's own effect may wait for a running task.
    const holding = this.hold(execId, active.driver, settled);
    // Not parked before this command's pending controls and its own effect are delivered (G9).
    const releaseParking = active.driver.holdParking();
    let parked = false;
    try {
      if (applying) {
        await applying.then(() => removeApplied(this.options.js, others)).catch((e) => {
          log.warn(
            "pending controls of {execId} not applied; the execution is given up and replayed: {error}",
            {
              execId,
              error: e instanceof Error ? e.message : String(e),
            },
          );
          active.driver.abandon();
        });
      }
      // A command that fails leaves a driver in an unknown state: give it up, never leave it running.
      await Promise.resolve(own ? undefined : act(active.driver)).catch((e) => {
        log.warn("command {subject} failed on {execId}; the execution is given up and replayed: {error}", {
          subject: delivery.subject,
          execId,
          error: e instanceof Error ? e.message : String(e),
        });
        active.driver.abandon();
      });
      releaseParking();
      const result = await holding;
      if (result === "ended") {
        const { driver } = active;
        await this.options.onEnded?.({
          execId,
          correlationId,
          parent: driver.replay.parent,
          outcome: driver.result,
        });
        await this.catchUpEnd(execId, correlationId);
      }
      parked = result === "parked";
      if (result === "abandoned") return abandonedOutcome(active.driver);
    } finally {
      releaseParking();
      this.active.delete(execId);
      await this.options.leases.release(execId, { parked });
    }
  }

  /**
   * Keeps a command unacknowledged (withExecution heartbeats it) and the lease fresh until `settled` resolves.
   * A lease that can no longer be refreshed may be another engine's by now: the driver is given up rather
   * than run twice.
   */
  private async hold<T>(
    execId: string,
    driver: ExecutionDriver,
    settled: Promise<T>,
    refreshLease = true,
  ): Promise<T> {
    const { leases } = this.options;
    const renew = () =>
      leases.refresh(execId).then((status) => {
        this.options.stats?.countRenewal(status);
        if (status === "held" || status === "unconfirmed") return;
        log.warn(
          status === "lost"
            ? "Lost the lease of execution {exec_id} to another engine; giving up its driver"
            : "The lease of execution {exec_id} could not be renewed within its TTL; giving up its driver",
          { exec_id: execId },
        );
        driver.abandon();
      });
    // Several tries before the lease stops being writable (see Leases.writableUntil); at once when its
    // confirmation is already old (a slow history read).
    const renewal = refreshLease
      ? setInterval(renew, Math.max(100, Math.min(leases.ttlMs / 5, 60_000)))
      : undefined;
    if (refreshLease && leases.writableUntil(execId) - Date.now() < leases.ttlMs / 2) renew();
    try {
      return await settled;
    } finally {
      clearInterval(renewal);
    }
  }

  private async activate(
    execId: string,
    correlationId: string,
    fresh: ReplayState | undefined,
    delivery: Delivery,
    needed?: (seen: ReplayState) => boolean | Promise<boolean>,
  ): Promise<Active | undefined> {
    // The first deliveries of a wake-up leave a parked execution to the engine that parked it.
    const claim = await this.options.leases.claim(execId, {
      yieldToParked: delivery.deliveryCount <= PARKED_YIELDS,
    });
    if (claim === "parked elsewhere") return YIELDED;
    if (claim === "held elsewhere") return undefined;
    // Accepted here less than the lease TTL ago, first delivered here, and the lease taken where no engine
    // held it within its TTL: no other engine drove it, so there is nothing to read and no one to fence. An
    // engine that drove it and gave its command back (a nak) left its lease's entry or release marker.
    const first = fresh && delivery.deliveryCount === 1 && this.options.leases.takenAnew(execId)
      ? fresh
      : undefined;
    // An execution first activated here has no command before its execute; any other may have a control
    // waiting (F8, F9). The read starts before the history's and the take-over (one round trip less before the
    // driver runs): nothing else applies a control while this engine holds the lease. Awaited only for an
    // execution that goes on, so the failure of a read whose answer is not needed is dropped.
    const controlsRead = first
      ? undefined
      : pendingControls(this.options.bus, this.options.js, correlationId, execId);
    controlsRead?.catch(() => {});
    let replay: ReplayState | undefined;
    try {
      // Only a first delivery may be found moot: one that comes back may have activated a driver that took
      // it (a signal's wait end recorded) and died or was given up before its next step; dropped then,
      // nothing would drive the execution again (finding G9's rest). The replay decides.
      const moot = delivery.deliveryCount === 1 ? needed : undefined;
      const read = first ?? await this.takeOver(execId, correlationId, moot);
      if (read === "moot") {
        await this.options.leases.release(execId, { parked: true });
        return MOOT;
      }
      replay = read;
    } catch (e) {
      await this.options.leases.release(execId);
      // The moot check of a signal records its drop, or looks a copy's up (DroppedSignalStoreError).
      const what = e instanceof DroppedSignalStoreError ? e.message : "its history could not be read";
      throw new Error(`Cannot activate execution ${execId}: ${what}`, { cause: e });
    }
    if (!first && replay && !replay.ended && replay.tasks.size > 0 && !this.drivenHere.has(execId)) {
      this.options.stats?.countTakeover();
    }
    this.drivenHere.remember(execId);
    if (!first && delivery.deliveryCount > 1 && replay && !replay.ended) {
      // A command delivered again: its first engine died or let go, and this one takes the execution over.
      log.info("Took over execution {exec_id} (delivery {delivery} of {subject})", {
        exec_id: execId,
        delivery: delivery.deliveryCount,
        subject: delivery.subject,
      });
    }
    const workflow = replay ? this.options.project.workflows.get(replay.workflowId) : undefined;
    if (replay && !replay.ended && !workflow) {
      // Its definition is gone (the project was reloaded without it): say so rather than leave it RUNNING.
      await this.options.onOrphan?.(execId, correlationId, replay.workflowId);
    }
    // An open task the reloaded definition no longer declares: the replay would leave it open for good.
    const undeclared = replay && workflow && !replay.ended
      ? openTaskNotDeclared(replay, workflow)
      : undefined;
    if (undeclared) {
      await this.options.onTaskUndeclared?.(execId, correlationId, replay!.workflowId, undeclared);
    }
    if (!replay || !workflow || replay.ended || undeclared) {
      await this.options.leases.release(execId);
      if (replay?.ended && replay.parent) {
        // It ended, but its parent may not have heard (a crash between the two): tell it again.
        await this.options.onEnded?.({
          execId,
          correlationId,
          parent: replay.parent,
          outcome: replay.outcome,
        });
      }
      // Its state may not show the end (the command came back because its engine died before the check).
      if (replay?.ended) await this.catchUpEnd(execId, correlationId);
      return NOTHING_TO_DO;
    }
    const controls = controlsRead === undefined ? undefined : await controlsRead
      .then(async (controls) => {
        const parent = replay.parent;
        if (controls.cancel === undefined && parent) {
          const { bus, js } = this.options;
          controls.cancel = await parentCancelReason(bus, js, correlationId, parent.execId);
        }
        return controls;
      })
      .catch(async (e) => {
        await this.options.leases.release(execId);
        throw new Error(`Cannot activate execution ${execId}: its pending commands could not be read`, {
          cause: e,
        });
      });
    const driver = new ExecutionDriver(
      this.options.services,
      this.options.project,
      workflow,
      execId,
      correlationId,
      replay,
      this.options.leases.holdingOf(execId),
    );
    const active = { driver, controls, activatedBy: deliveryKey(delivery) };
    this.active.set(execId, active);
    return active;
  }

  /** The state's check of an ended execution (WorkflowExecutorOptions.catchUpEnd); its failure says it ended. */
  private async catchUpEnd(execId: string, correlationId: string): Promise<void> {
    try {
      await this.options.catchUpEnd?.(execId, correlationId);
    } catch (e) {
      throw new EndNotInStateError(execId, e);
    }
  }

  /**
   * Records that this engine took the lease, with the revision it took it at, before the history is read:
   * any event of an earlier holder stored after this one (a paused engine's late write) is then ignored by
   * the replay and the state fold, and everything stored before it is in the history read next.
   */
  private async appendTakeOver(execId: string, correlationId: string): Promise<void> {
    const { bus, leases } = this.options;
    const message = create(WorkflowExecutionTakenOverSchema, {
      metadata: bus.metadata(correlationId),
      // The workflow's id is learnt from the history, read after this; the execution's id is what counts.
      workflow: { execId },
      engine: leases.instanceId,
    });
    const { deadline, revision } = leases.assertWritable(execId, subjectOf(message));
    message.metadata!.leaseRevision = BigInt(revision);
    await bus.publish(message, { deadline });
  }

  /**
   * The history of an execution this engine now holds the lease of. An ended one is left as it is: a moot
   * command (a wait's timer due after a signal ended it, a signal after the end) writes nothing after its
   * end (outside review F3). Otherwise the take-over is appended before the rest of the history is read, so
   * the fence holds: an end is final, and a zombie end stored after an earlier take-over is already left out
   * of the first read, so the first read's verdict is the one a read after the take-over would give. A lease
   * this engine took back from its own parked holding (Leases.resumed: no one held it since) needs none: the
   * read made after the claim is complete, and the parked holding's revision fences what its take-over did (a
   * signal its waits refuse wrote one take-over per signal: issue 9's rest, `signal_flood_test.ts`).
   */
  private async takeOver(
    execId: string,
    correlationId: string,
    needed?: (seen: ReplayState) => boolean | Promise<boolean>,
  ): Promise<ReplayState | "moot" | undefined> {
    const { js } = this.options;
    const before = await readExecutionEvents(js, correlationId, execId);
    const seen = foldReplayState(before);
    if (seen?.ended) return seen;
    // A command the history shows to be moot (see the signal's) is dropped: nothing is written.
    if (seen && needed && !(await needed(seen))) return "moot";
    if (this.options.leases.resumed(execId)) return seen;
    await this.appendTakeOver(execId, correlationId);
    const last = before.at(-1)?.seq;
    const events = last === undefined
      ? await readExecutionEvents(js, correlationId, execId)
      : before.concat(await readExecutionEventsAfter(js, correlationId, execId, last));
    return foldReplayState(events);
  }
}

/**
 * What a wait's record (`task.waiting_ended`: the signal's payload, its metadata and the task's ids) may need
 * beyond the payload: a signal whose payload leaves less is refused (it could never be recorded).
 */
const SIGNAL_RECORD_ROOM = 4 * 1024;

/**
 * The state of an execution whose history ended could not be made to show that end (end_catch_up.ts): the
 * command comes back to check again, and is given up without recording another end.
 */
class EndNotInStateError extends Error {
  constructor(readonly execId: string, cause: unknown) {
    super(
      `execution ${execId} ended, but its state could not be made to show it: ${
        cause instanceof Error ? cause.message : String(cause)
      }`,
      { cause },
    );
    this.name = "EndNotInStateError";
  }
}

/** One message of the command streams, whichever delivery of it: their subjects do not overlap. */
function deliveryKey(delivery: Delivery): string {
  return `${delivery.subject}#${delivery.streamSequence}`;
}

/** A handler's answer that sends the command back for a counted cause (see bounded). */
type Outcome = BusOutcome | { nakDelayMs: number; cause: Cause; reason: string };

/** The command comes back for a driver given up; its reason is the cause the driver knows, if any. */
function abandonedOutcome(driver: ExecutionDriver): Outcome {
  return {
    nakDelayMs: 1_000,
    cause: "abandoned",
    reason: driver.abandonReason ?? "its history could not be written",
  };
}

const CAUSE_TEXT: Record<Cause, string> = {
  leaseBusy: "another engine held the execution",
  abandoned: "the execution's driver was given up",
  failed: "handling the command failed",
};

function redeliveryDelay(cause: Cause, count: number): number {
  if (cause === "abandoned") return 1_000;
  return Math.min(250 * 2 ** Math.min(count - 1, 5), 5_000);
}

/**
 * A wake-up of an execution another engine parked, which that engine (still there) should take: the command
 * is sent back PARKED_YIELD_DELAY_MS later, at most PARKED_YIELDS times (then any engine takes it). With two
 * engines pulling, each delivery reaches the right one half the time.
 */
const YIELDED: Active = { driver: undefined as unknown as ExecutionDriver };
const PARKED_YIELDS = 4;
const PARKED_YIELD_DELAY_MS = 20;

/**
 * Marks an activation that found its own command moot (a signal no recorded wait listens for) and left the
 * execution parked: only that command is done; another one that awaited the activation tries again.
 */
const MOOT = { driver: undefined as unknown as ExecutionDriver } satisfies Active;

/** Marks a command that needs no driver (the execution ended, or is unknown). */
const NOTHING_TO_DO = { driver: undefined as unknown as ExecutionDriver } satisfies Active;

/** The last `limit` ids remembered, oldest forgotten first. */
class RecentIds {
  private readonly ids = new Set<string>();

  constructor(private readonly limit: number) {}

  has(id: string): boolean {
    return this.ids.has(id);
  }

  remember(id: string): void {
    this.ids.delete(id);
    this.ids.add(id);
    if (this.ids.size > this.limit) this.ids.delete(this.ids.values().next().value!);
  }
}
