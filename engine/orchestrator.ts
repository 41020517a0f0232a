/**
 * The orchestrator answers WorkflowTrigger requests: it checks the input against the workflow's schema,
 * honours idempotency keys, records WorkflowExecutionStarted and hands the execution to the workflow
 * executors (WorkflowExecute). The reply goes out once both are stored, so an accepted execution is durable.
 */
import { create, type DescMessage, type JsonObject, type MessageShape } from "@bufbuild/protobuf";
import type { KV } from "@nats-io/kv";
import type { Subscription } from "@nats-io/transport-node";
import type { ErrorObject, ValidateFunction } from "ajv/dist/2020.js";
import { jsonSchemaAjv } from "../pkg/utils/json_schema.ts";
import { budgetError, validationBudgetExhausted } from "../pkg/utils/json_schema_budget.ts";
import { type Bus, lastSequenceOf, STREAMS } from "../pkg/nats/mod.ts";
import {
  WorkflowCancelSchema,
  WorkflowExecuteSchema,
  WorkflowExecutionStartedSchema,
  type WorkflowTrigger,
  WorkflowTriggerReplySchema,
} from "../pkg/pb/mod.ts";
import type { AcceptedExecutions } from "./accepted_executions.ts";
import type { Project } from "./domain/project/mod.ts";
import { jsonBytes, parseJsonBytes } from "./json_bytes.ts";
import { InputValidationError } from "./errors.ts";
import { isTerminal, type WorkflowDocument } from "./state/execution_state.ts";
import type { StateStore } from "./state/state_store.ts";
import { getLogger } from "../pkg/logger/mod.ts";

const log = getLogger(["engine", "orchestrator"]);

export class Orchestrator {
  private subscription?: Subscription;
  private readonly validators = new Map<string, ValidateFunction>();
  // `useDefaults`: a `default` in `config.input` is part of the input (docs/yaml-reference.md). No logger: what
  // Ajv would log (an unknown format it ignores) is reported at load, at its field (check_embedded_schemas.ts).
  private readonly ajv = jsonSchemaAjv({ allErrors: true, strict: false, useDefaults: true });

  constructor(
    private readonly bus: Bus,
    private readonly project: Project,
    private readonly idempotency: KV,
    private readonly store: StateStore,
    private readonly accepted: AcceptedExecutions,
  ) {}

  start(): void {
    this.subscription = this.bus.serve(
      "compozy.*.workflow.cmds.*.trigger",
      "compozy-orchestrator",
      WorkflowTriggerReplySchema,
      (message) => this.trigger(message as WorkflowTrigger & MessageShape<DescMessage>),
    );
  }

  stop(): void {
    this.subscription?.unsubscribe();
  }

  private async trigger(message: WorkflowTrigger) {
    const workflowId = message.workflow?.id ?? "";
    const execId = message.workflow?.execId ?? "";
    const workflow = this.project.workflows.get(workflowId);
    if (!workflow) return refusal(`Unknown workflow '${workflowId}'`, "unknown_workflow");
    const checked = this.checkInput(workflowId, workflow.config.config?.input, message.inputJson);
    if ("fields" in checked) {
      const fields = checked.fields;
      // The message names each field, as an API start's 422 does: a sub-workflow task's error is shown by its
      // message alone (compozy run, compozy dev, the console's headline).
      const message = new InputValidationError(workflowId, fields).message;
      return refusal(message, "validation_failed", { fields });
    }
    const { input } = checked;
    // The execution is started, recorded and run with the input its schema's defaults filled in, so a replay
    // reads what the first run saw. The idempotency digest stays the one of the input as sent: a retry of
    // the same request sends the same bytes.
    const start = checked.inputJson ? { ...message, inputJson: checked.inputJson } : message;
    const parentEnded = await this.parentEnded(message, workflowId);
    if (parentEnded) return parentEnded;
    let claimed: string | undefined;
    if (message.idempotencyKey) {
      const inputDigest = await sha256Hex(new Uint8Array(message.inputJson));
      const claim = await this.claimKey(workflowId, message.idempotencyKey, execId, inputDigest);
      if (claim.execId !== execId) {
        // Only a retry of the same input may complete the first start: the start and execute commands are
        // sent under the first one's message ids, so another input would race the first request's and the
        // execution could run on one input while it records another (outside review B1). A claim written
        // before the digest was kept (no digest) is adopted as before.
        if (claim.inputDigest === undefined || claim.inputDigest === inputDigest) {
          await this.adopt(start, workflowId, claim.execId, input);
        }
        return create(WorkflowTriggerReplySchema, { execId: claim.execId, duplicate: true });
      }
      claimed = claim.name;
    }
    let started = false;
    try {
      return await this.accept(start, workflowId, execId, input, () => started = true);
    } catch (e) {
      // Nothing durable started: free the key, or a retry would be pointed at an execution that never runs.
      // Once the start is stored the key stays: a retry re-sends the same (deduplicated) commands.
      if (claimed && !started) {
        await this.idempotency.delete(claimed).catch((cause) =>
          log.warn("idempotency key of {execId} not freed after a failed start: {error}", {
            execId,
            error: String(cause),
          })
        );
      }
      throw e;
    }
  }

  /**
   * A sub-workflow's start handled after its parent ended, or after the task that starts it was given up (a
   * request that waited in line, or was sent again, while the parent was canceled or timed out, or the task
   * lost a race) is refused: no one would cancel that child, which ran on to its end with no one waiting for
   * it. The parent's end stores its open tasks' `task.canceled` before its own end, so the task's
   * `task.canceled` in the history says both, at once; the parent's state document, which the state folder
   * writes after the history, is the fallback for an end that canceled no task (outside review B4: read
   * first, it still showed RUNNING, and the child's tool ran after its parent's end). A child an earlier
   * request of the same key started is canceled (see cancelClaimedChild).
   */
  private async parentEnded(message: WorkflowTrigger, workflowId: string) {
    const gone = await this.parentGone(message);
    if (!gone) return undefined;
    await this.cancelClaimedChild(message, workflowId, gone.why);
    return refusal(
      `Sub-workflow '${message.workflow?.id}' not started: ${gone.why}`,
      "parent_ended",
      gone.details,
    );
  }

  /** Why no one would cancel a child started for `message`'s parent task now (see parentEnded). */
  private async parentGone(
    message: WorkflowTrigger,
  ): Promise<{ why: string; details: JsonObject } | undefined> {
    const parentExecId = message.parent?.workflow?.execId;
    if (!parentExecId) return undefined;
    const task = message.parent?.task;
    const correlationId = message.metadata?.correlationId || parentExecId;
    const taskCanceled = task?.execId
      ? await lastSequenceOf(
        this.bus.js,
        STREAMS.events,
        `compozy.${correlationId}.task.evts.${task.execId}.canceled`,
      )
      : undefined;
    if (taskCanceled) {
      return {
        why:
          `its task ${task!.id} (${
            task!.execId
          }) of ${parentExecId} was canceled (its parent ended, or the ` +
          "task was given up)",
        details: { parent_exec_id: parentExecId, task_exec_id: task!.execId },
      };
    }
    const parent = await this.store.getWorkflow(parentExecId);
    if (!parent || !isTerminal(parent.status)) return undefined;
    return {
      why: `its parent ${parentExecId} ended ${parent.status}`,
      details: { parent_exec_id: parentExecId, parent_status: parent.status },
    };
  }

  /**
   * Closes the window between {@link parentEnded} and the child's entry in its parent's index of children
   * (leftover of issue 9): a parent that ended in between had looked its children up before the entry was
   * there, and the child ran on after its parent's end. Once the child's entry is stored, the same check runs
   * again; a parent's end stores its open tasks' `task.canceled` before it looks its children up, so either
   * this check sees it, or that lookup comes after the entry and finds the child. A child found so is
   * canceled here; true then.
   */
  private async cancelIfParentGone(message: WorkflowTrigger, execId: string): Promise<boolean> {
    const parentExecId = message.parent?.workflow?.execId;
    if (!parentExecId) return false;
    await this.store.indexChild(parentExecId, execId);
    const gone = await this.parentGone(message);
    if (!gone) return false;
    const why = gone.why;
    log.info("sub-workflow {execId} canceled as it started: {why}", { execId, why });
    await this.cancelChild(message, execId, why);
    return true;
  }

  /**
   * A start refused because its parent task is gone may repeat one that started the child already: the
   * parent's replay asks again for the child of a task it then gives up (its composite's time-out applied as
   * the replay reached it, given_up_child_test.ts E5), or a request is sent again after its first answer was
   * lost. The parent's runner took the refusal for "nothing started" and the child waited on for good (model
   * finding G14): the child the key names, if its start was stored, is canceled here.
   */
  private async cancelClaimedChild(message: WorkflowTrigger, workflowId: string, why: string): Promise<void> {
    if (!message.idempotencyKey) return;
    const entry = await this.idempotency.get(await keyName(workflowId, message.idempotencyKey));
    const [claimed] = entry?.operation === "PUT" ? entry.string().split("\n") : [];
    if (!claimed) return;
    const correlationId = message.metadata?.correlationId || claimed;
    const started = await lastSequenceOf(
      this.bus.js,
      STREAMS.events,
      `compozy.${correlationId}.workflow.evts.${claimed}.started`,
    );
    if (!started) return; // Never started: refused, nothing starts it.
    log.info("sub-workflow {execId}, started by an earlier request, canceled: {why}", {
      execId: claimed,
      why,
    });
    await this.cancelChild(message, claimed, why);
  }

  /** Tells the child `execId` of `message`'s parent to cancel, as its parent would. */
  private async cancelChild(message: WorkflowTrigger, execId: string, why: string): Promise<void> {
    await this.bus.publish(create(WorkflowCancelSchema, {
      // The message id a parent's own cancel of this child uses (services.ts sendCancel): stored once.
      metadata: this.bus.metadata(message.metadata?.correlationId || execId, `${execId}:cancel`),
      workflow: { execId },
      reason: `parent ${message.parent?.workflow?.execId}: ${why}`,
    }));
  }

  /**
   * Completes the start of the execution a key was claimed for, when nothing shows it under way: its engine
   * died between the claim and the start (SIGKILL in the model test's crash runs, seed 30060), and the key
   * would otherwise point every retry, and a parent's sub-workflow task, at an execution that never runs.
   * Whatever part is missing is sent again under the same message ids: the start if it was never stored,
   * then the execute command (deduplicated when the first one was stored). An execution with tasks, or no
   * longer RUNNING, is under way and left alone. An adopted sub-workflow whose parent ended meanwhile is
   * canceled (cancelIfParentGone), as a freshly accepted one is.
   */
  private async adopt(message: WorkflowTrigger, workflowId: string, execId: string, input: unknown) {
    const doc = await this.store.getWorkflow(execId);
    // No task list at all is a long one (state_fold.ts stops listing past MAX_LISTED_TASKS): under way too.
    if (doc && (doc.status !== "RUNNING" || doc.task_ids === undefined || doc.task_ids.length > 0)) return;
    const given = message.metadata?.correlationId;
    // A root execution is its own correlation id; a sub-workflow keeps its run's.
    const correlationId = doc?.correlation_id ??
      (!given || given === message.workflow?.execId ? execId : given);
    const adopted = { ...message, metadata: { ...message.metadata!, correlationId } };
    const started = doc ??
      await lastSequenceOf(
        this.bus.js,
        STREAMS.events,
        `compozy.${correlationId}.workflow.evts.${execId}.started`,
      );
    log.info("idempotency key of {execId} names an execution not under way; sending its {missing} again", {
      execId,
      missing: started ? "execute command" : "start",
    });
    if (!started) await this.recordStart(adopted, workflowId, execId, input);
    // The same window as accept's: the parent may have ended since the parent check, looking its children up
    // before this child was indexed. Never marked fresh (see accept), so a cancel sent here is applied by the
    // child's first activation before anything runs.
    await this.cancelIfParentGone(adopted, execId);
    await this.sendExecute(adopted, workflowId, execId);
  }

  private async accept(
    message: WorkflowTrigger,
    workflowId: string,
    execId: string,
    input: unknown,
    onStarted: () => void,
  ) {
    await this.recordStart(message, workflowId, execId, input);
    onStarted();
    // Activated without a history read (nothing happened yet); an adopted start is read back (see adopt). A
    // child canceled as it started is not: its first activation must read the pending cancel and apply it
    // before anything runs (pending_controls.ts); as a fresh one it ran its first task first (review of B4).
    if (!await this.cancelIfParentGone(message, execId)) this.accepted.add(execId);
    await this.sendExecute(message, workflowId, execId);
    return create(WorkflowTriggerReplySchema, { execId });
  }

  /** The start event and the execution's first document. */
  private async recordStart(message: WorkflowTrigger, workflowId: string, execId: string, input: unknown) {
    const correlationId = message.metadata?.correlationId || execId;
    const started = this.bus.publish(create(WorkflowExecutionStartedSchema, {
      metadata: this.bus.metadata(correlationId, `${execId}:started`),
      workflow: { id: workflowId, execId },
      inputJson: message.inputJson,
      triggerSource: message.triggerSource,
      parent: message.parent,
      idempotencyKey: message.idempotencyKey,
      rerunOf: message.rerunOf,
    }));
    // The state is readable as soon as the trigger is answered; the state manager folds on top of it.
    const initial: WorkflowDocument = {
      exec_id: execId,
      workflow_id: workflowId,
      status: "RUNNING",
      input,
      output: null,
      error: null,
      started_at: new Date().toISOString(),
      ended_at: null,
      correlation_id: correlationId,
      parent: message.parent?.workflow
        ? { exec_id: message.parent.workflow.execId, task_exec_id: message.parent.task?.execId ?? "" }
        : null,
      rerun_of: message.rerunOf || null,
      waiting: {},
      task_ids: [],
    };
    await Promise.all([
      started,
      // Refused when the state manager was first: its document is the same start.
      this.store.putWorkflow(initial, 0).catch((e) =>
        log.debug("initial state of {execId} not written: {error}", { execId, error: String(e) })
      ),
    ]);
  }

  private async sendExecute(message: WorkflowTrigger, workflowId: string, execId: string) {
    await this.bus.publish(create(WorkflowExecuteSchema, {
      metadata: this.bus.metadata(message.metadata?.correlationId || execId, `${execId}:execute`),
      workflow: { id: workflowId, execId },
      inputJson: message.inputJson,
      parent: message.parent,
    }));
  }

  /**
   * The exec id the key first started (ours when we are first), the digest of the input it started with
   * (undefined for a claim stored before digests were kept) and the key's name in the bucket.
   */
  private async claimKey(
    workflowId: string,
    key: string,
    execId: string,
    inputDigest: string,
  ): Promise<{ execId: string; inputDigest?: string; name: string }> {
    const name = await keyName(workflowId, key);
    try {
      await this.idempotency.create(name, new TextEncoder().encode(`${execId}\n${inputDigest}`));
      return { execId, inputDigest, name };
    } catch (e) {
      // Taken already (or the create failed): the key's first execution answers.
      log.debug("idempotency key {name} not created: {error}", { name, error: String(e) });
      const entry = await this.idempotency.get(name);
      const [claimed, claimedDigest] = entry?.operation === "PUT" ? entry.string().split("\n") : [];
      return { execId: claimed || execId, inputDigest: claimed ? claimedDigest : inputDigest, name };
    }
  }

  /**
   * The input of `inputJson` checked against the workflow's schema, with the schema's defaults filled in
   * (and then `inputJson`, its bytes again), or the failing fields. Each `path` is a JSON pointer; the input
   * itself is `/`, as in every other error detail of the API.
   */
  private checkInput(
    workflowId: string,
    schema: unknown,
    inputJson: Uint8Array,
  ): { input: unknown; inputJson?: Uint8Array } | { fields: { path: string; message: string }[] } {
    // Parsed for this call alone: the defaults Ajv writes into it change nothing the caller holds.
    const input = parseJsonBytes(inputJson) ?? {};
    if (!schema) return { input };
    let validate = this.validators.get(workflowId);
    if (!validate) {
      validate = this.ajv.compile(schema as object);
      this.validators.set(workflowId, validate);
    }
    const valid = validate(input);
    // Past the step bound every check fails, and under a `not` or in a `oneOf` a failure is a pass: "valid"
    // then says nothing (json_schema_budget.ts, brk43).
    if (validationBudgetExhausted(this.ajv)) {
      return { fields: [{ path: "/", message: budgetError(this.ajv).message }] };
    }
    if (valid) return { input, inputJson: jsonBytes(input) };
    return {
      fields: (validate.errors ?? []).map((e: ErrorObject) => {
        const missing = (e.params as { missingProperty?: string }).missingProperty;
        const pointer = e.keyword === "required" ? `${e.instancePath}/${missing}` : e.instancePath;
        return { path: pointer || "/", message: e.message ?? e.keyword };
      }),
    };
  }
}

async function sha256Hex(bytes: Uint8Array<ArrayBuffer>): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", bytes);
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

function refusal(message: string, code: string, details?: JsonObject) {
  return create(WorkflowTriggerReplySchema, { error: { message, code, details, retryable: false } });
}

/** The name of an idempotency key's entry in its bucket. */
function keyName(workflowId: string, key: string): Promise<string> {
  return sha256Hex(new TextEncoder().encode(`${workflowId}\n${key}`));
}
