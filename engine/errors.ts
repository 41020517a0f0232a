/** Errors the engine reports to its callers; each carries what the caller needs to answer a user. */
import { PublishError, RequestError } from "../pkg/nats/mod.ts";

export class UnknownWorkflowError extends Error {
  override name = "UnknownWorkflowError";
  constructor(readonly workflowId: string) {
    super(`Unknown workflow '${workflowId}'`);
  }
}

export interface FieldError {
  /** JSON pointer of the failing field, e.g. `/city`; the input itself is `/`. */
  path: string;
  message: string;
}

/** An input that fails the workflow's input schema: nothing was started. */
export class InputValidationError extends Error {
  override name = "InputValidationError";
  constructor(readonly workflowId: string, readonly fields: FieldError[]) {
    super(
      `Input of workflow '${workflowId}' is invalid: ` +
        fields.map((f) => `${f.path === "/" ? "(input)" : f.path} ${f.message}`).join("; "),
    );
  }
}

export class ExecutionNotFoundError extends Error {
  override name = "ExecutionNotFoundError";
  constructor(readonly execId: string) {
    super(`Unknown execution '${execId}'`);
  }
}

/** A command that the execution's status does not allow, e.g. a signal to a finished execution. */
export class ExecutionConflictError extends Error {
  override name = "ExecutionConflictError";
  constructor(readonly execId: string, readonly status: string, action: string) {
    super(`Cannot ${action} execution '${execId}': it is ${status}`);
  }
}

/**
 * No engine took a trigger within the client's patience: every attempt met "no responders", so no engine
 * was connected to NATS (none running, or all restarting or reconnecting after a node's death) for that long,
 * and nothing was started. A NATS outage for the API (503).
 */
export class NoEngineAnsweredError extends RequestError {
  override name = "NoEngineAnsweredError";
  constructor(readonly workflowId: string, waitedMs: number, attempts: number, cause: RequestError) {
    super(
      `No engine answered the trigger of workflow '${workflowId}' for ${Math.round(waitedMs / 1_000)} s ` +
        `(${attempts} attempts, each met no responders): no engine process is connected to NATS (none ` +
        `running, or all restarting); nothing was started`,
      cause.subject,
      { cause },
    );
  }
}

/**
 * A sub-workflow's start that got no answer, or was refused because the orchestrator's handler failed (its own
 * JetStream call timed out, say): whether the child started is unknown, and it is not the task's failure. A
 * domain refusal (parent_ended, validation_failed) comes as the reply's error instead. A PublishError, so the
 * parent's driver is given up as after a write NATS did not take: its command comes back and the replay sends
 * the start again under the same idempotency key, which finds the child if the first start stored it. Each
 * give-up counts against the command's redelivery bound, so a start that always fails ends the parent FAILED.
 */
export class ChildStartUnansweredError extends PublishError {
  override name = "ChildStartUnansweredError";
  constructor(readonly workflowId: string, cause: RequestError) {
    super(
      `The start of sub-workflow '${workflowId}' has no known outcome: ${cause.message}`,
      cause.subject,
      1,
      { cause },
    );
  }
}

/**
 * A live follow of an execution's events ended before it was stopped: nothing more will come through it
 * (the EVENTS stream was deleted, the NATS connection closed, the consumer failed). The follower must say so:
 * a follow that went quiet instead sent keep-alives for ever (outside review api35).
 */
export class EventFollowLostError extends Error {
  override name = "EventFollowLostError";
  constructor(readonly execId: string, readonly reason: string, options?: ErrorOptions) {
    super(`The live events of execution '${execId}' stopped: ${reason}`, options);
  }
}
