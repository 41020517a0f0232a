import assert from "node:assert/strict";
import { create, type DescMessage, type MessageInitShape, type MessageShape } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import * as pb from "../../pkg/pb/mod.ts";
import type { StoredEvent } from "../history/read_history.ts";
import { documentsOf, foldChanged, foldCopy, foldTaskDocument, foldWorkflowDocument } from "./state_fold.ts";
import { MAX_LISTED_TASKS, type TaskDocument, type WorkflowDocument } from "./execution_state.ts";

let seq = 0;
function event<S extends DescMessage>(
  type: string,
  schema: S,
  init: MessageInitShape<S>,
  at = seq + 1,
): StoredEvent {
  seq = Math.max(seq, at);
  return {
    seq: at,
    subject: `compozy.c.${type.split(".")[0]}.evts.x.${type.split(".")[1]}`,
    type,
    time: new Date(1_700_000_000_000 + at),
    message: create(schema, init) as MessageShape<DescMessage>,
  };
}

const workflow = { id: "wf", execId: "e1" };
const task = { id: "hold", execId: "t1" };

function started(): WorkflowDocument {
  return foldWorkflowDocument(
    undefined,
    event("workflow.started", pb.WorkflowExecutionStartedSchema, {
      metadata: { correlationId: "e1", time: timestampFromMs(1) },
      workflow,
      inputJson: new TextEncoder().encode('{"a":1}'),
    }),
  )!;
}

Deno.test("state fold: executions", async (t) => {
  await t.step("a start makes a RUNNING document with its input", () => {
    const doc = started();
    assert.equal(doc.status, "RUNNING");
    assert.deepEqual(doc.input, { a: 1 });
    assert.equal(doc.correlation_id, "e1");
  });

  await t.step("an event before the start makes no document", () => {
    assert.equal(
      foldWorkflowDocument(
        undefined,
        event("workflow.paused", pb.WorkflowExecutionPausedSchema, { workflow }),
      ),
      undefined,
    );
  });

  await t.step("waits move it to WAITING and back; the end clears them", () => {
    let doc = started();
    doc = foldWorkflowDocument(
      doc,
      event("task.waiting_started", pb.TaskExecutionWaitingStartedSchema, {
        workflow,
        task,
        signalId: "go",
      }),
    )!;
    assert.equal(doc.status, "WAITING");
    assert.deepEqual(doc.waiting, { t1: "go" });
    doc = foldWorkflowDocument(
      doc,
      event("task.waiting_ended", pb.TaskExecutionWaitingEndedSchema, {
        workflow,
        task,
      }),
    )!;
    assert.equal(doc.status, "RUNNING");
    assert.deepEqual(doc.waiting, {});
    doc = foldWorkflowDocument(
      doc,
      event("workflow.success", pb.WorkflowExecutionSuccessSchema, {
        workflow,
        outputJson: new TextEncoder().encode('"ok"'),
      }),
    )!;
    assert.equal(doc.status, "SUCCESS");
    assert.equal(doc.output, "ok");
    assert.ok(doc.ended_at);
    assert.equal(doc.wait_seq, undefined);
  });

  await t.step("a redelivered waiting_started does not bring back a wait that ended (issue 9, 10)", () => {
    let doc = started();
    const waitStarted = event("task.waiting_started", pb.TaskExecutionWaitingStartedSchema, {
      workflow,
      task,
      signalId: "go",
    });
    doc = foldWorkflowDocument(doc, waitStarted)!;
    doc = foldWorkflowDocument(
      doc,
      event("task.waiting_ended", pb.TaskExecutionWaitingEndedSchema, {
        workflow,
        task,
      }),
    )!;
    doc = foldWorkflowDocument(doc, waitStarted)!;
    assert.deepEqual(doc.waiting, {});
    assert.equal(doc.status, "RUNNING");
  });

  await t.step("a wait start folded after its end (another engine held it) brings no wait back", () => {
    let doc = started();
    const waitStarted = event("task.waiting_started", pb.TaskExecutionWaitingStartedSchema, {
      workflow,
      task,
      signalId: "go",
    });
    doc = foldWorkflowDocument(
      doc,
      event("task.waiting_ended", pb.TaskExecutionWaitingEndedSchema, { workflow, task }),
    )!;
    doc = foldWorkflowDocument(doc, waitStarted)!;
    assert.deepEqual(doc.waiting, {});
    assert.equal(doc.status, "RUNNING");
  });

  await t.step("a canceled task's wait ends", () => {
    let doc = started();
    doc = foldWorkflowDocument(
      doc,
      event("task.waiting_started", pb.TaskExecutionWaitingStartedSchema, {
        workflow,
        task,
        signalId: "go",
      }),
    )!;
    assert.deepEqual(
      documentsOf(event("task.canceled", pb.TaskExecutionCanceledSchema, { workflow, task })),
      {
        workflow: true,
        task: true,
      },
    );
    doc = foldWorkflowDocument(
      doc,
      event("task.canceled", pb.TaskExecutionCanceledSchema, { workflow, task }),
    )!;
    assert.deepEqual(doc.waiting, {});
  });

  await t.step("a terminal status is final", () => {
    let doc = started();
    doc = foldWorkflowDocument(
      doc,
      event("workflow.canceled", pb.WorkflowExecutionCanceledSchema, {
        workflow,
        reason: "stop",
      }),
    )!;
    doc = foldWorkflowDocument(
      doc,
      event("workflow.success", pb.WorkflowExecutionSuccessSchema, { workflow }),
    )!;
    assert.equal(doc.status, "CANCELED");
    assert.deepEqual(doc.error, { message: "stop", code: "canceled" });
  });

  await t.step("an end lists its driver's tasks, whose dispatches another engine folds (or later)", () => {
    let doc = started();
    doc = foldWorkflowDocument(
      doc,
      event("task.dispatched", pb.TaskDispatchedSchema, { workflow, task, taskType: "basic" }),
    )!;
    doc = foldWorkflowDocument(
      doc,
      event("workflow.failed", pb.WorkflowExecutionFailedSchema, {
        workflow,
        error: { message: "boom", code: "x" },
        tasks: { execIds: ["t0", "t1", "t2"], recordedExecIds: ["t1", "t2"] },
      }),
    )!;
    assert.equal(doc.status, "FAILED");
    assert.deepEqual(doc.task_ids, ["t1", "t0", "t2"]);
  });
});

Deno.test("state fold: task executions", async (t) => {
  await t.step("dispatched, started, success; attempts and output", () => {
    let doc = foldTaskDocument(
      undefined,
      event("task.dispatched", pb.TaskDispatchedSchema, {
        workflow,
        task,
        parentTask: { execId: "p1" },
      }),
    );
    assert.equal(doc.status, "SCHEDULED");
    assert.equal(doc.parent_exec_id, "p1");
    doc = foldTaskDocument(
      doc,
      event("task.started", pb.TaskExecutionStartedSchema, { workflow, task, attempt: 2 }),
    );
    assert.equal(doc.status, "RUNNING");
    assert.equal(doc.attempts, 2);
    doc = foldTaskDocument(
      doc,
      event("task.success", pb.TaskExecutionSuccessSchema, {
        workflow,
        task,
        attempt: 2,
        outputJson: new TextEncoder().encode("[1]"),
      }),
    );
    assert.equal(doc.status, "SUCCESS");
    assert.deepEqual(doc.output, [1]);
    assert.ok(doc.ended_at);
  });

  await t.step("a late dispatched or started never moves a finished task", () => {
    let doc = foldTaskDocument(
      undefined,
      event("task.failed", pb.TaskExecutionFailedSchema, {
        workflow,
        task,
        error: { message: "no", code: "x" },
      }),
    );
    doc = foldTaskDocument(
      doc,
      event("task.started", pb.TaskExecutionStartedSchema, { workflow, task, attempt: 1 }),
    );
    assert.equal(doc.status, "FAILED");
    assert.deepEqual(doc.error, { message: "no", code: "x" });
  });

  await t.step("a skipped success is SKIPPED; a wait time-out is not yet an end", () => {
    const skipped = foldTaskDocument(
      undefined,
      event("task.success", pb.TaskExecutionSuccessSchema, {
        workflow,
        task,
        skipped: true,
      }),
    );
    assert.equal(skipped.status, "SKIPPED");
    const timedOut = foldTaskDocument(
      undefined,
      event("task.waiting_timed_out", pb.TaskExecutionWaitingTimedOutSchema, {
        workflow,
        task,
      }),
    );
    // The task's failure or its retry follows (a wait with `retry` waits again).
    assert.equal(timedOut.status, "RUNNING");
    assert.equal(timedOut.error?.code, "wait_timeout");
  });

  await t.step("a redelivered waiting_started or started never makes a task wait or run again", () => {
    const taskStarted = event("task.started", pb.TaskExecutionStartedSchema, { workflow, task, attempt: 1 });
    const waitStarted = event("task.waiting_started", pb.TaskExecutionWaitingStartedSchema, {
      workflow,
      task,
      signalId: "go",
    });
    let doc = foldTaskDocument(undefined, waitStarted);
    doc = foldTaskDocument(
      doc,
      event("task.waiting_ended", pb.TaskExecutionWaitingEndedSchema, { workflow, task }),
    );
    assert.equal(doc.status, "RUNNING");
    doc = foldTaskDocument(doc, waitStarted);
    assert.equal(doc.status, "RUNNING");
    assert.equal(doc.waiting_for, null);
    // Folded in the other order: the older start moves nothing either.
    let waiting = foldTaskDocument(undefined, waitStarted);
    waiting = foldTaskDocument(waiting, taskStarted);
    assert.equal(waiting.status, "WAITING");
  });
});

Deno.test("state fold: a paused engine's late writes after a take-over never reach the state", async (t) => {
  const leased = <S extends DescMessage>(
    type: string,
    schema: S,
    lease: number,
    init: MessageInitShape<S>,
  ) => {
    const e = event(type, schema, init);
    (e.message as { metadata?: pb.Metadata }).metadata = create(pb.MetadataSchema, {
      correlationId: "e1",
      leaseRevision: BigInt(lease),
    });
    return e;
  };
  const takeOver = () => leased("workflow.taken_over", pb.WorkflowExecutionTakenOverSchema, 9, { workflow });
  const zombieSuccess = () =>
    leased("task.success", pb.TaskExecutionSuccessSchema, 5, { workflow, task, outputJson: encode("A") });
  const zombieEnd = () =>
    leased("workflow.success", pb.WorkflowExecutionSuccessSchema, 5, { workflow, outputJson: encode("A") });

  await t.step("the execution: A's end after B's take-over changes nothing; B's end does", () => {
    let doc = started();
    doc = foldWorkflowDocument(
      doc,
      leased("task.started", pb.TaskExecutionStartedSchema, 5, { workflow, task }),
    )!;
    doc = foldWorkflowDocument(doc, takeOver())!;
    const before = JSON.stringify(doc);
    doc = foldWorkflowDocument(doc, zombieSuccess())!;
    doc = foldWorkflowDocument(doc, zombieEnd())!;
    assert.equal(JSON.stringify(doc), before);
    doc = foldWorkflowDocument(
      doc,
      leased("workflow.success", pb.WorkflowExecutionSuccessSchema, 9, { workflow, outputJson: encode("B") }),
    )!;
    assert.equal(doc.status, "SUCCESS");
    assert.equal(doc.output, "B");
  });

  await t.step(
    "a task: A's late success after B's attempt started is ignored by the task's own fence",
    () => {
      let doc = foldTaskDocument(
        undefined,
        leased("task.started", pb.TaskExecutionStartedSchema, 5, { workflow, task }),
      );
      takeOver();
      doc = foldTaskDocument(
        doc,
        leased("task.started", pb.TaskExecutionStartedSchema, 9, { workflow, task, attempt: 2 }),
      );
      doc = foldTaskDocument(doc, zombieSuccess());
      assert.equal(doc.status, "RUNNING");
      doc = foldTaskDocument(
        doc,
        leased("task.success", pb.TaskExecutionSuccessSchema, 9, { workflow, task, outputJson: encode("B") }),
      );
      assert.equal(doc.status, "SUCCESS");
      assert.equal(doc.output, "B");
    },
  );

  await t.step(
    "a task: before any event of B's, the execution's fence (passed in) ignores A's success",
    () => {
      const fence = { revision: 9, seq: takeOver().seq };
      const doc = foldTaskDocument(undefined, zombieSuccess(), fence);
      assert.equal(doc, undefined);
    },
  );
});

function encode(value: unknown): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(value));
}

Deno.test("state fold: a fold on foldCopy equals a fold on a deep copy, leaves its source as it was (issue 11)", () => {
  const te = (n: number) => new TextEncoder().encode(JSON.stringify(n));
  const other = (n: number) => ({ id: "one", execId: `o${n}` });
  const workflowEvents: StoredEvent[] = [
    event("task.dispatched", pb.TaskDispatchedSchema, { workflow, task }),
    event("task.waiting_started", pb.TaskExecutionWaitingStartedSchema, { workflow, task, signalId: "go" }),
    event("task.waiting_started", pb.TaskExecutionWaitingStartedSchema, { workflow, task, signalId: "go" }),
    ...Array.from(
      { length: MAX_LISTED_TASKS + 2 },
      (_, n) =>
        event("task.success", pb.TaskExecutionSuccessSchema, { workflow, task: other(n), outputJson: te(n) }),
    ),
    event("task.waiting_ended", pb.TaskExecutionWaitingEndedSchema, { workflow, task }),
    event("task.success", pb.TaskExecutionSuccessSchema, { workflow, task }),
    event("workflow.success", pb.WorkflowExecutionSuccessSchema, { workflow, outputJson: te(7) }),
    event("workflow.failed", pb.WorkflowExecutionFailedSchema, { workflow }),
  ];
  const taskEvents: StoredEvent[] = [
    event("task.started", pb.TaskExecutionStartedSchema, { workflow, task, attempt: 1, inputJson: te(1) }),
    event("task.waiting_started", pb.TaskExecutionWaitingStartedSchema, { workflow, task, signalId: "go" }),
    event("task.waiting_ended", pb.TaskExecutionWaitingEndedSchema, { workflow, task }),
    event("task.success", pb.TaskExecutionSuccessSchema, { workflow, task, attempt: 1, outputJson: te(2) }),
    event("task.failed", pb.TaskExecutionFailedSchema, { workflow, task }),
  ];
  const check = <D extends WorkflowDocument | TaskDocument>(
    start: D,
    events: StoredEvent[],
    fold: (d: D, e: StoredEvent) => D,
  ) => {
    let doc = start;
    let changes = 0;
    for (const e of events) {
      const stored = JSON.stringify(doc);
      const reference = fold(structuredClone(doc), e);
      const folded = fold(foldCopy(doc), e);
      assert.deepEqual(folded, reference, e.type);
      assert.equal(JSON.stringify(doc), stored, `${e.type} changed the document it was folded on`);
      assert.equal(foldChanged(doc, folded), JSON.stringify(reference) !== stored, e.type);
      if (foldChanged(doc, folded)) changes++;
      doc = folded;
    }
    // Both answers came up: some events changed the document, some (late, duplicate, unlisted) did not.
    assert.ok(changes > 0 && changes < events.length, `${changes} of ${events.length} changed it`);
  };
  check(started(), workflowEvents, (d, e) => foldWorkflowDocument(d, e)!);
  const dispatched = foldTaskDocument(
    undefined,
    event("task.dispatched", pb.TaskDispatchedSchema, { workflow, task }),
  );
  check(dispatched, taskEvents, (d, e) => foldTaskDocument(d, e));
});
