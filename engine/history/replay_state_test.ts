import assert from "node:assert/strict";
import { create, type DescMessage, type MessageInitShape, type MessageShape } from "@bufbuild/protobuf";
import * as pb from "../../pkg/pb/mod.ts";
import type { StoredEvent } from "./read_history.ts";
import { copyMayEnd, foldReplayState, replayStateOfExecute } from "./replay_state.ts";

let seq = 0;
function event<S extends DescMessage>(type: string, schema: S, init: MessageInitShape<S>): StoredEvent {
  seq++;
  return {
    seq,
    subject: "",
    type,
    time: new Date(1_700_000_000_000 + seq),
    message: create(schema, init) as MessageShape<DescMessage>,
  };
}

const workflow = { id: "wf", execId: "e1" };
const task = { id: "a", execId: "t1" };
const start = () =>
  event("workflow.started", pb.WorkflowExecutionStartedSchema, {
    workflow,
    inputJson: new TextEncoder().encode('{"n":1}'),
    parent: { workflow: { id: "p", execId: "pe" }, task: { id: "sub", execId: "pt" } },
  });

Deno.test("replay state", async (t) => {
  await t.step("nothing before the start; the start gives input, parent and start time", () => {
    assert.equal(foldReplayState([]), undefined);
    const s = foldReplayState([start()])!;
    assert.deepEqual(s.input, { n: 1 });
    assert.deepEqual(s.parent, { execId: "pe", workflowId: "p", taskId: "sub", taskExecId: "pt" });
    assert.equal(s.ended, false);
    assert.equal(s.tasks.size, 0);
  });

  await t.step("a task's last outcome, attempt and stream position", () => {
    const s = foldReplayState([
      start(),
      event("task.dispatched", pb.TaskDispatchedSchema, { workflow, task }),
      event("task.started", pb.TaskExecutionStartedSchema, { workflow, task, attempt: 1 }),
      event("task.retry_scheduled", pb.TaskExecutionRetryScheduledSchema, { workflow, task, nextAttempt: 2 }),
      event("task.started", pb.TaskExecutionStartedSchema, { workflow, task, attempt: 2 }),
      event("task.success", pb.TaskExecutionSuccessSchema, {
        workflow,
        task,
        outputJson: new TextEncoder().encode('"ok"'),
      }),
    ])!;
    const record = s.tasks.get("a")!;
    assert.equal(record.status, "success");
    assert.equal(record.attempt, 2);
    assert.equal(record.output, "ok");
    assert.equal(record.seq, seq);
  });

  await t.step(
    "a task that started and has no outcome is known to have started (a re-run is the next attempt)",
    () => {
      const s = foldReplayState([
        start(),
        event("task.dispatched", pb.TaskDispatchedSchema, { workflow, task }),
        event("task.started", pb.TaskExecutionStartedSchema, { workflow, task, attempt: 1 }),
      ])!;
      assert.equal(s.tasks.get("a")!.status, "running");
      assert.equal(s.tasks.get("a")!.started, true);
      const dispatchedOnly = foldReplayState([
        start(),
        event("task.dispatched", pb.TaskDispatchedSchema, { workflow, task }),
      ])!;
      assert.equal(dispatchedOnly.tasks.get("a")!.started, undefined);
    },
  );

  await t.step("a wait: waiting, then woken with its payload; a terminal record is final", () => {
    const s = foldReplayState([
      start(),
      event("task.waiting_started", pb.TaskExecutionWaitingStartedSchema, { workflow, task, signalId: "go" }),
      event("task.waiting_ended", pb.TaskExecutionWaitingEndedSchema, {
        workflow,
        task,
        payloadJson: new TextEncoder().encode('{"ok":true}'),
      }),
    ])!;
    assert.equal(s.tasks.get("a")!.status, "woken");
    assert.deepEqual(s.tasks.get("a")!.wakePayload, { ok: true });
    const failed = foldReplayState([
      start(),
      event("task.failed", pb.TaskExecutionFailedSchema, {
        workflow,
        task,
        error: { code: "x", message: "m" },
      }),
      event("task.started", pb.TaskExecutionStartedSchema, { workflow, task, attempt: 3 }),
    ])!;
    assert.equal(failed.tasks.get("a")!.status, "failed");
    assert.equal(failed.tasks.get("a")!.error?.code, "x");
  });

  await t.step(
    "a taken signal message: a copy may end the waits open before its first take, not a later one",
    () => {
      const wait = (id: string) => ({ id, execId: `x-${id}` });
      const started = (id: string, signalId = "go") =>
        event("task.waiting_started", pb.TaskExecutionWaitingStartedSchema, {
          workflow,
          task: wait(id),
          signalId,
        });
      const ended = (id: string) =>
        event("task.waiting_ended", pb.TaskExecutionWaitingEndedSchema, {
          workflow,
          task: wait(id),
          signalMessageId: "m1",
        });
      // a and b wait for go, c for another signal; m1 ends a, then the engine stops before b's record; d
      // starts waiting after (a wait started by the flow that a's end moved on).
      const s = foldReplayState([
        start(),
        started("a"),
        started("b"),
        started("c", "stop"),
        ended("a"),
        started("d"),
      ])!;
      const taken = s.takenSignals.get("m1")!;
      assert.equal(taken.signalId, "go");
      const may = (id: string) => copyMayEnd(taken, s.tasks.get(id)!);
      assert.deepEqual(["a", "b", "c", "d"].map(may), [false, true, false, false]);
      // b's end recorded too: the copy ends nothing.
      const all = foldReplayState([start(), started("a"), started("b"), ended("a"), ended("b")])!;
      assert.equal(copyMayEnd(all.takenSignals.get("m1")!, all.tasks.get("b")!), false);
    },
  );

  await t.step("pause, resume and the end", () => {
    const s = foldReplayState([
      start(),
      event("workflow.paused", pb.WorkflowExecutionPausedSchema, { workflow }),
    ])!;
    assert.equal(s.paused, true);
    const ended = foldReplayState([
      start(),
      event("workflow.failed", pb.WorkflowExecutionFailedSchema, {
        workflow,
        error: { message: "m", code: "c" },
      }),
    ])!;
    assert.equal(ended.ended, true);
    assert.deepEqual(ended.outcome, { status: "FAILED", output: null, error: { message: "m", code: "c" } });
  });

  await t.step("an execute command's start time keeps its milliseconds (issue 9, defect 7)", () => {
    const s = replayStateOfExecute(create(pb.WorkflowExecuteSchema, {
      metadata: { time: { seconds: 1_700_000_000n, nanos: 987_000_000 } },
      workflow,
    }));
    assert.equal(s.startedAt!.getTime(), 1_700_000_000_987);
    assert.equal(s.workflowId, "wf");
  });
});
