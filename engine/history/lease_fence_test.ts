import assert from "node:assert/strict";
import { create, type DescMessage, type MessageInitShape, type MessageShape } from "@bufbuild/protobuf";
import * as pb from "../../pkg/pb/mod.ts";
import type { StoredEvent } from "./read_history.ts";
import { foldReplayState } from "./replay_state.ts";
import { isFenced, raiseFence, withoutZombieWrites } from "./lease_fence.ts";

let seq = 0;
/** An event stored next, written under lease revision `lease` (0: without a lease). */
function event<S extends DescMessage>(type: string, schema: S, lease: number, init: MessageInitShape<S>) {
  seq++;
  const message = create(schema, init) as MessageShape<DescMessage> & { metadata?: pb.Metadata };
  message.metadata = create(pb.MetadataSchema, { correlationId: "e1", leaseRevision: BigInt(lease) });
  return { seq, subject: "", type, time: new Date(1_700_000_000_000 + seq), message } satisfies StoredEvent;
}

const workflow = { id: "wf", execId: "e1" };
const step = { id: "slow", execId: "t1" };
const json = (v: unknown) => new TextEncoder().encode(JSON.stringify(v));
const start = () => event("workflow.started", pb.WorkflowExecutionStartedSchema, 0, { workflow });
const takeOver = (lease: number) =>
  event("workflow.taken_over", pb.WorkflowExecutionTakenOverSchema, lease, { workflow, engine: "b" });
const started = (lease: number, attempt: number) =>
  event("task.started", pb.TaskExecutionStartedSchema, lease, { workflow, task: step, attempt });
const success = (lease: number, output: unknown) =>
  event("task.success", pb.TaskExecutionSuccessSchema, lease, {
    workflow,
    task: step,
    outputJson: json(output),
  });

Deno.test("lease fence: the replay ignores a paused engine's writes stored after a take-over", async (t) => {
  await t.step(
    "engine A (revision 5) paused mid-call; B took over at 9; A's late success is not history",
    () => {
      const events = [
        start(),
        started(5, 1),
        takeOver(9),
        started(9, 2),
        success(5, "from A"),
        success(9, "from B"),
      ];
      const replay = foldReplayState(events)!;
      const record = replay.tasks.get("slow")!;
      assert.equal(record.status, "success");
      assert.equal(record.output, "from B");
      assert.equal(record.attempt, 2);
      assert.equal(withoutZombieWrites(events).length, events.length - 1);
    },
  );

  await t.step("A's late write stored before B's first event of the task is fenced by the take-over", () => {
    const replay = foldReplayState([start(), started(5, 1), takeOver(9), success(5, "from A")])!;
    const record = replay.tasks.get("slow")!;
    assert.equal(record.status, "running", "the task has no outcome: B runs it (attempt 2)");
    assert.equal(record.attempt, 1);
  });

  await t.step("what A stored before the take-over stays: B read it after appending its take-over", () => {
    const replay = foldReplayState([start(), started(5, 1), success(5, "from A"), takeOver(9)])!;
    assert.equal(replay.tasks.get("slow")!.output, "from A");
  });

  await t.step("a late take-over of an older holder is fenced too, and fences nothing", () => {
    const events = [start(), takeOver(9), takeOver(7), started(9, 1), success(9, "from B")];
    assert.equal(withoutZombieWrites(events).length, events.length - 1);
    assert.equal(foldReplayState(events)!.tasks.get("slow")!.output, "from B");
  });

  await t.step("events without a lease (a start, a command's failure) are never fenced", () => {
    const failed = event("workflow.failed", pb.WorkflowExecutionFailedSchema, 0, { workflow });
    const replay = foldReplayState([start(), takeOver(9), failed])!;
    assert.equal(replay.ended, true);
  });

  await t.step("each execution of a run has its own fence", () => {
    const other = event("task.success", pb.TaskExecutionSuccessSchema, 5, {
      workflow: { id: "child", execId: "e2" },
      task: { id: "x", execId: "t9" },
    });
    assert.equal(withoutZombieWrites([start(), takeOver(9), other]).length, 3);
  });

  await t.step("out of stream order (the state fold): only events stored after the fence are fenced", () => {
    const fence = { revision: 9, seq: 100 };
    const late = { message: success(5, "A").message, seq: 101 };
    const early = { message: success(5, "A").message, seq: 99 };
    assert.equal(isFenced(fence, late), true);
    assert.equal(isFenced(fence, early), false);
    // The same revision seen at an earlier sequence moves the fence back to it.
    assert.deepEqual(raiseFence(fence, { message: takeOver(9).message, seq: 50 }), { revision: 9, seq: 50 });
    assert.equal(raiseFence(fence, early), fence);
  });
});
