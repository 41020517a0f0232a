/**
 * The copy of an execution's activating command, delivered again to the same engine while its driver runs
 * (the engine missed the command's heartbeats past the ack wait: a loaded machine, here a SIGSTOP), must not
 * take the command out of the work queue: it is what brings the execution back when the engine dies. A signal's
 * copy went to the active driver, which dropped it (no wait listens any more), and was acknowledged; the next
 * SIGKILL left nothing to redeliver, and the execution stayed RUNNING for good (model seed 121065: a collection
 * whose items' tool calls succeeded after the last take-over, never recorded). Real engine processes, real
 * nats-server, a scripted runtime in this process.
 */
import assert from "node:assert/strict";
import { jetstreamManager } from "@nats-io/jetstream";
import { STREAMS } from "../../pkg/nats/mod.ts";
import { startCrashStack } from "../support/engine_process.ts";
import { until } from "../support/until.ts";

const DURABLE = "compozy-workflow-executor";

Deno.test({
  name: "a signal's copy delivered again to its own active execution keeps the command until it ends",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const attempts: number[] = [];
    const stack = await startCrashStack(
      {
        "compozy.yaml": "name: redelivered-activation\nworkflows:\n  - source: ./wf.yaml\n",
        "t.ts": "",
        "wf.yaml": "id: main\ntools:\n  - id: long\n    execute: ./t.ts\ntasks:\n" +
          "  - { id: w, type: wait, signal: go }\n" +
          '  - { id: next, use: tool(id=long), with: { got: "{{ .tasks.w.output.n }}" } }\n',
      },
      {
        // The first call hangs (its engine dies meanwhile); the re-run answers.
        long: (input, call) => {
          attempts.push(call.attempt);
          return attempts.length === 1 ? new Promise(() => {}) : input;
        },
      },
      { instanceId: "e" },
    );
    const { client } = stack;
    try {
      const { execId } = await client.trigger("main", {});
      await until(async () => (await client.events(execId)).some((e) => e.type === "task.waiting_started"));
      // Parked, its execute command acknowledged: the signal's message is the one that activates it.
      const jsm = await jetstreamManager(stack.nc);
      const consumer = () => jsm.consumers.info(STREAMS.workflowCommands, DURABLE);
      await until(async () => {
        const info = await consumer();
        return info.num_ack_pending === 0 && info.num_pending === 0;
      });
      // Stopped while the signal is delivered, and past its 1 s ack wait: the server delivers it again, to
      // this very engine, which takes both deliveries at once when it runs again.
      const delivered = (await consumer()).delivered.consumer_seq;
      stack.stopEngine();
      await client.signal(execId, "go", { n: 7 });
      await until(async () => (await consumer()).delivered.consumer_seq >= delivered + 2, 30_000);
      stack.continueEngine();
      await until(() => Promise.resolve(attempts.length === 1));
      // The copy is handled at once; acknowledged (the old code), the command leaves the work queue.
      await until(async () => (await consumer()).num_ack_pending === 0, 3_000).catch(() => {});
      const subject = `compozy.${execId}.workflow.cmds.${execId}.signal`;
      const held = await jsm.streams.getMessage(STREAMS.workflowCommands, { last_by_subj: subject })
        .catch(() => undefined);
      assert.ok(held, "the activating signal is still in the work queue while its execution runs");
      await stack.killEngine();
      // The same instance id: it takes its lease back at once.
      stack.restartEngine();
      const state = await client.waitForEnd(execId, 30_000);
      const history = (await client.events(execId)).map((e) => e.type);
      assert.equal(state.status, "SUCCESS", history.join(", "));
      assert.deepEqual(state.output, { got: 7 });
      assert.deepEqual(attempts, [1, 2]);
    } finally {
      await stack.close();
    }
  },
});
