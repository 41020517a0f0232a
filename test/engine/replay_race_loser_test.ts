/**
 * A race decided before its engine gave the execution up gives up its losing branch on the replay, as the first
 * run would have (leftover of issue 9): the replay ran only the recorded winner, so a loser's sub-workflow
 * that was still running ran on after its parent's end, its task never recorded canceled. Real nats-server,
 * real engine: the writes after the winner's success fail once (NATS out of reach), the driver gives the
 * execution up, and the command that comes back replays it.
 */
import assert from "node:assert/strict";
import { type BusMessage, PublishError, subjectOf } from "../../pkg/nats/mod.ts";
import { TaskExecutionSuccessSchema } from "../../pkg/pb/mod.ts";
import { scriptedRuntime, startEngineHarness } from "../support/engine.ts";
import { waitForChild, waitForStatus } from "../support/flows.ts";

const FILES = {
  "compozy.yaml": "name: race\nworkflows:\n  - source: ./wf.yaml\n  - source: ./long.yaml\n",
  "wf.yaml": `id: main
tasks:
  - id: r
    type: parallel
    strategy: race
    tasks:
      - { id: quick, type: wait, signal: go }
      - { id: sub, use: workflow(id=long) }
`,
  "long.yaml": "id: long\ntasks:\n  - { id: hold, type: wait, signal: never }\n",
};

Deno.test({
  name: "a race decided before a give-up cancels its running loser on the replay",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const h = await startEngineHarness(FILES, { ackWaitMs: 1_000 });
    const runtime = scriptedRuntime(h.bus, {});
    try {
      const { client } = h.engine;
      let failAfterWinner = true;
      const publish = h.bus.publish.bind(h.bus);
      h.bus.publish = async (message: BusMessage, options) => {
        const result = await publish(message, options);
        const winner = message.$typeName === TaskExecutionSuccessSchema.typeName &&
          (message as { task?: { id?: string } }).task?.id === "r/quick";
        if (winner && failAfterWinner) {
          // Stored, but the engine is told it could not be (as when NATS goes away with the ack): it gives
          // the execution up before it stops the losing branch.
          failAfterWinner = false;
          throw new PublishError("NATS out of reach (test)", subjectOf(message), 1);
        }
        return result;
      };
      const { execId } = await client.trigger("main", {});
      const child = await waitForChild(h, "long");
      await waitForStatus(h, child.exec_id, "WAITING");
      await client.signal(execId, "go", { v: 1 });
      const state = await client.waitForEnd(execId, 30_000);
      assert.equal(state.status, "SUCCESS", JSON.stringify(state.error));
      assert.equal(failAfterWinner, false, "the winner's success was stored, and its ack refused");
      // Before the fix: the loser's sub-workflow kept WAITING (this wait timed out).
      const childState = await client.waitForEnd(child.exec_id, 20_000);
      assert.equal(childState.status, "CANCELED");
      const sub = state.tasks.find((t) => t.task_id === "r/sub");
      const canceled = (await client.events(execId)).filter((e) =>
        e.type === "task.canceled" && e.subject.includes(sub!.exec_id)
      );
      assert.equal(canceled.length, 1, JSON.stringify(canceled));
    } finally {
      runtime.stop();
      await h.close();
    }
  },
});
