/**
 * Records a driver's state events. Outcomes (success, failure, retries, waits, the workflow's end) are
 * awaited JetStream writes: the step is durable once they return. Dispatched/started are history only:
 * they are published without waiting (the EVENTS stream still stores them), since no replay depends on them.
 */
import { create, type DescMessage, type MessageInitShape, type MessageShape } from "@bufbuild/protobuf";
import { type Bus, type BusMessage, MessageTooLargeError, subjectOf } from "../../../pkg/nats/mod.ts";
import { getLogger } from "../../../pkg/logger/mod.ts";
import * as pb from "../../../pkg/pb/mod.ts";
import { type TaskFailure, toErrorInfo } from "../../failure.ts";
import { jsonBytes } from "../../json_bytes.ts";
import { readExecutionEvents } from "../../history/read_history.ts";
import type { TaskConfig } from "../task/schema.ts";
import type { DriverEvents, DriverRef } from "./driver_services.ts";

const log = getLogger(["engine", "events"]);

/**
 * Who may record an execution's events, and until when: the lease holder, until its lease could have
 * passed to another engine (see Leases). A write past that deadline is refused. Each event carries the
 * lease revision of its writer: a write already handed to the client when its process was paused, stored
 * after another engine took the lease, is ignored by the replay and the state fold (lease_fence.ts).
 */
export interface WriteFence {
  /**
   * The deadline (ms since the epoch) of a write for `execId` and the lease revision it carries; throws a
   * PublishError when none may be sent, also when `holding` (the driver's, see DriverRef.holding) has ended.
   */
  assertWritable(execId: string, subject: string, holding?: number): { deadline: number; revision: number };
  /**
   * Renews the lease of `execId` now (a suspended lease becomes writable again once a renewal confirms it);
   * what it found (see Leases.refresh).
   */
  refresh?(execId: string): Promise<unknown>;
}

export class EventRecorder implements DriverEvents {
  constructor(private readonly bus: Bus, private readonly fence?: WriteFence) {}

  private base(d: DriverRef, eventId: string) {
    return {
      metadata: this.bus.metadata(d.correlationId, eventId),
      workflow: { id: d.workflow.id, execId: d.execId },
    };
  }

  private async record<S extends DescMessage>(
    d: DriverRef,
    schema: S,
    init: MessageInitShape<S>,
  ): Promise<void> {
    const message = create(schema, init) as BusMessage;
    const fence = this.fence?.assertWritable(message.workflow?.execId ?? "", subjectOf(message), d.holding);
    stampLease(message, fence?.revision);
    await this.bus.publish(message, { deadline: fence?.deadline, signal: d.givenUp });
  }

  /** A task's outcome: once it is stored, the execution's end lists the task as recorded (TaskLedger). */
  private async recordOutcome<S extends DescMessage>(
    d: DriverRef,
    key: string,
    taskExecId: string,
    schema: S,
    init: MessageInitShape<S>,
  ): Promise<void> {
    await d.tasks.recording(this.record(d, schema, init).then(() => d.tasks.record(taskExecId, key)));
  }

  /**
   * Publishes without waiting for the store's answer. False when the message is larger than one bus message
   * (not sent); true otherwise, also when the lease may not be written and the send was skipped, unless
   * `refusable`: then such a lease throws (the caller must not go on).
   */
  private fireAndForget<S extends DescMessage>(
    d: DriverRef,
    schema: S,
    init: MessageInitShape<S>,
    refusable = false,
  ): boolean {
    const message = create(schema, init) as BusMessage;
    try {
      stampLease(
        message,
        this.fence?.assertWritable(message.workflow?.execId ?? "", subjectOf(message), d.holding).revision,
      );
    } catch (e) {
      if (refusable) throw e;
      log.debug("history event not published: {error}", { error: String(e) });
      return true;
    }
    // nats-core would throw a message too large out of the attempt.
    if (!this.bus.publishCoreIfFits(message)) {
      log.warn("history event {subject} not published: larger than one bus message", {
        subject: subjectOf(message),
      });
      return false;
    }
    return true;
  }

  taskDispatched(
    d: DriverRef,
    task: TaskConfig,
    key: string,
    execId: string,
    parentExecId?: string,
  ): void {
    d.tasks.dispatch(execId, key);
    this.fireAndForget(d, pb.TaskDispatchedSchema, {
      ...this.base(d, `${execId}:dispatched`),
      task: { id: key, execId },
      taskType: task.type,
      parentTask: parentExecId ? { execId: parentExecId } : undefined,
    });
  }

  /**
   * Throws (a PublishError) when the lease may not be written: the attempt must not run, since a call sent
   * without its task.started would run again as the same attempt after a take-over (outside review E3: the
   * lease was suspended after a reconnect, task.started was skipped and the call went out).
   */
  taskStarted(d: DriverRef, key: string, execId: string, attempt: number, input?: unknown): void {
    const sent = this.fireAndForget(
      d,
      pb.TaskExecutionStartedSchema,
      this.started(d, key, execId, attempt, input),
      true,
    );
    // An input too large for one message is left out: the start (the attempt's count) is recorded all the
    // same, and its replay renders the input again.
    if (!sent && input !== undefined) {
      this.fireAndForget(
        d,
        pb.TaskExecutionStartedSchema,
        this.started(d, key, execId, attempt, undefined),
        true,
      );
    }
  }

  /**
   * The attempt's start, stored (awaited). An input too large for one bus message is left out, so the start
   * is stored all the same: its replay renders the input again, as before it was recorded.
   */
  async taskStartedStored(
    d: DriverRef,
    key: string,
    execId: string,
    attempt: number,
    input?: unknown,
  ): Promise<void> {
    try {
      await this.record(d, pb.TaskExecutionStartedSchema, this.started(d, key, execId, attempt, input));
    } catch (e) {
      if (!(e instanceof MessageTooLargeError) || input === undefined) throw e;
      log.warn(
        "task {task} of {execId}: its input is larger than one bus message: its start is stored without it",
        {
          task: key,
          execId: d.execId,
        },
      );
      await this.record(d, pb.TaskExecutionStartedSchema, this.started(d, key, execId, attempt, undefined));
    }
  }

  /**
   * Before a call of `attempt` is sent again: throws unless the lease may still be written, and stores the
   * attempt's task.started (awaited) if the history does not hold it (skipped or lost across a reconnect).
   */
  async startedBeforeResend(
    d: DriverRef,
    key: string,
    execId: string,
    attempt: number,
    input?: unknown,
  ): Promise<void> {
    // Its subject only: the input (megabytes, for a large call) is encoded once, by taskStartedStored below.
    const init = this.started(d, key, execId, attempt, undefined);
    // After a reconnect the lease is suspended until a renewal confirms it: renewed now rather than at its beat.
    await this.fence?.refresh?.(d.execId);
    this.fence?.assertWritable(
      d.execId,
      subjectOf(create(pb.TaskExecutionStartedSchema, init) as BusMessage),
      d.holding,
    );
    const history = await readExecutionEvents(this.bus.js, d.correlationId, d.execId);
    const stored = history.some((e) => {
      if (e.type !== "task.started") return false;
      const started = e.message as MessageShape<typeof pb.TaskExecutionStartedSchema>;
      return started.task?.execId === execId && (started.attempt || 1) === attempt;
    });
    if (stored) return;
    log.info(
      "task.started of {task} attempt {attempt} was not stored: recorded before its call is sent again",
      {
        task: key,
        attempt,
      },
    );
    await this.taskStartedStored(d, key, execId, attempt, input);
  }

  private started(d: DriverRef, key: string, execId: string, attempt: number, input: unknown) {
    return {
      ...this.base(d, `${execId}:started:${attempt}`),
      task: { id: key, execId },
      attempt,
      inputJson: input === undefined ? undefined : jsonBytes(input),
    };
  }

  taskCanceled(d: DriverRef, key: string, execId: string): void {
    this.fireAndForget(d, pb.TaskExecutionCanceledSchema, {
      ...this.base(d, `${execId}:canceled`),
      task: { id: key, execId },
    });
  }

  taskEndedWithExecution(d: DriverRef, key: string, execId: string): Promise<void> {
    return this.recordOutcome(d, key, execId, pb.TaskExecutionCanceledSchema, {
      ...this.base(d, `${execId}:canceled`),
      task: { id: key, execId },
    });
  }

  taskSucceeded(
    d: DriverRef,
    key: string,
    execId: string,
    output: unknown,
    attempt: number,
    skipped: boolean,
    usage?: unknown,
    route?: string,
  ): Promise<void> {
    return named(
      this.recordOutcome(d, key, execId, pb.TaskExecutionSuccessSchema, {
        ...this.base(d, `${execId}:success`),
        task: { id: key, execId },
        outputJson: jsonBytes(output),
        attempt,
        skipped,
        usage: usage as pb.TokenUsage | undefined,
        route: route ?? "",
      }),
      d,
      `task '${key}' output`,
    );
  }

  taskFailed(d: DriverRef, key: string, execId: string, failure: TaskFailure, attempt: number) {
    return this.recordOutcome(d, key, execId, pb.TaskExecutionFailedSchema, {
      ...this.base(d, `${execId}:failed`),
      task: { id: key, execId },
      error: toErrorInfo(failure),
      attempt,
      // An agent's usage so far (leaf_executor.ts attaches it): a failed task was paid for too.
      usage: (failure as { usage?: pb.TokenUsage }).usage,
    });
  }

  retryScheduled(
    d: DriverRef,
    key: string,
    execId: string,
    nextAttempt: number,
    delayMs: number,
    failure: TaskFailure,
  ) {
    return this.record(d, pb.TaskExecutionRetryScheduledSchema, {
      ...this.base(d, `${execId}:retry:${nextAttempt}`),
      task: { id: key, execId },
      nextAttempt,
      delayMs: BigInt(delayMs),
      error: toErrorInfo(failure),
    });
  }

  waitingStarted(
    d: DriverRef,
    key: string,
    execId: string,
    attempt: number,
    signalId: string,
    deadlineMs: number,
  ) {
    // Event ids carry the attempt: a retried sleep or sub-workflow waits again, and that is no duplicate.
    return this.record(d, pb.TaskExecutionWaitingStartedSchema, {
      ...this.base(d, `${execId}:waiting:${attempt}`),
      task: { id: key, execId },
      signalId,
      deadlineUnixMs: BigInt(deadlineMs),
    });
  }

  waitingEnded(
    d: DriverRef,
    key: string,
    execId: string,
    attempt: number,
    payload: unknown,
    signalMessageId?: string,
  ) {
    return this.record(d, pb.TaskExecutionWaitingEndedSchema, {
      ...this.base(d, `${execId}:waiting_ended:${attempt}`),
      task: { id: key, execId },
      payloadJson: jsonBytes(payload),
      signalMessageId,
    });
  }

  waitingTimedOut(d: DriverRef, key: string, execId: string, attempt: number) {
    return this.record(d, pb.TaskExecutionWaitingTimedOutSchema, {
      ...this.base(d, `${execId}:waiting_timed_out:${attempt}`),
      task: { id: key, execId },
    });
  }

  workflowSucceeded(d: DriverRef, output: unknown) {
    return named(
      this.record(d, pb.WorkflowExecutionSuccessSchema, {
        ...this.base(d, `${d.execId}:success`),
        outputJson: jsonBytes(output),
        tasks: d.tasks.ended(),
      }),
      d,
      `workflow '${d.workflow.id}' outputs`,
    );
  }

  workflowFailed(d: DriverRef, failure: TaskFailure) {
    return this.record(d, pb.WorkflowExecutionFailedSchema, {
      ...this.base(d, `${d.execId}:failed`),
      error: toErrorInfo(failure),
      tasks: d.tasks.ended(),
    });
  }

  workflowCanceled(d: DriverRef, reason: string) {
    return this.record(d, pb.WorkflowExecutionCanceledSchema, {
      ...this.base(d, `${d.execId}:canceled`),
      reason,
      tasks: d.tasks.ended(),
    });
  }

  workflowTimedOut(d: DriverRef) {
    return this.record(d, pb.WorkflowExecutionTimedOutSchema, {
      ...this.base(d, `${d.execId}:timed_out`),
      error: { message: `workflow '${d.workflow.id}' timed out`, code: "workflow_timeout" },
      tasks: d.tasks.ended(),
    });
  }

  workflowPaused(d: DriverRef) {
    return this.record(d, pb.WorkflowExecutionPausedSchema, this.base(d, crypto.randomUUID()));
  }

  workflowResumed(d: DriverRef) {
    return this.record(d, pb.WorkflowExecutionResumedSchema, this.base(d, crypto.randomUUID()));
  }
}

/**
 * An output too large for one bus message names what it was (the task or the workflow), and is logged once at
 * error level: it becomes the task's (or workflow's) recorded failure output_too_large (toTaskFailure), so no
 * replay comes back to it.
 */
async function named(write: Promise<void>, d: DriverRef, what: string): Promise<void> {
  try {
    await write;
  } catch (e) {
    if (!(e instanceof MessageTooLargeError)) throw e;
    const labelled = new MessageTooLargeError(e.subject, e.bytes, e.maxBytes, { cause: e, what });
    log.error("execution {execId}: {message}", { execId: d.execId, message: labelled.message });
    throw labelled;
  }
}

/**
 * Writes the lease revision a driver's event is recorded under into its metadata, and into its id (the
 * JetStream message id): a retry of one holder's write is deduplicated, but a later holder's record of the
 * same step is not taken for a duplicate of a paused holder's late one (which the fence ignores).
 */
function stampLease(message: BusMessage, revision: number | undefined): void {
  if (revision === undefined || !message.metadata) return;
  message.metadata.leaseRevision = BigInt(revision);
  message.metadata.eventId += `@${revision}`;
}
