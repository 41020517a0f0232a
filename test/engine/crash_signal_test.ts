/**
 * A signal's activation whose engine dies after the signal was taken (finding G9's rest): the signal comes
 * back to the next engine, and no wait listens for it any more, since its own first delivery ended the wait.
 * It was dropped as moot before any replay (06a1e65), and nothing drove the execution again: RUNNING for
 * good. Real engine processes, real nats-server, a scripted runtime in this process.
 */
import assert from "node:assert/strict";
import { jetstreamManager } from "@nats-io/jetstream";
import { STREAMS } from "../../pkg/nats/mod.ts";
import { startCrashStack } from "../support/engine_process.ts";
import { until } from "../support/until.ts";

Deno.test({
  name: "a signal whose engine died after taking it comes back and the execution goes on",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const attempts: number[] = [];
    const stack = await startCrashStack(
      {
        "compozy.yaml": "name: crash-signal\nworkflows:\n  - source: ./wf.yaml\n",
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
      await client.signal(execId, "go", { n: 7 });
      // The signal's activation took it and runs the next task: the engine dies there.
      await until(() => Promise.resolve(attempts.length === 1));
      await stack.killEngine();
      // The same instance id: it takes its lease back at once.
      stack.restartEngine();
      const state = await client.waitForEnd(execId, 60_000);
      const history = (await client.events(execId)).map((e) => e.type);
      assert.equal(state.status, "SUCCESS", history.join(", "));
      assert.deepEqual(state.output, { got: 7 });
      assert.deepEqual(attempts, [1, 2]);
    } finally {
      await stack.close();
    }
  },
});

Deno.test({
  name: "B2: a signal that comes back as a first delivery after it ended its wait still drives the execution",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    // A nats-server killed with its engine (compozy dev's managed one) may deliver an unacknowledged message
    // to the next consumer client with a count of 1 (docs/engine.md), and only a first delivery may be found
    // moot: the signal was dropped ("no wait of it listens for it") and the execution RUNNING for good. Here
    // the signal's message is replaced by the same signal under a new message id: a delivery count of 1.
    const attempts: number[] = [];
    const stack = await startCrashStack(
      {
        "compozy.yaml": "name: crash-signal\nworkflows:\n  - source: ./wf.yaml\n",
        "t.ts": "",
        "wf.yaml": "id: main\ntools:\n  - id: long\n    execute: ./t.ts\ntasks:\n" +
          "  - { id: w, type: wait, signal: go }\n" +
          '  - { id: next, use: tool(id=long), with: { got: "{{ .tasks.w.output.n }}" } }\n',
      },
      {
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
      // Parked (its execute command acknowledged), so that the signal's message activates it and is held while
      // the next task runs: one that reached the execute's driver before it parked was acknowledged once its
      // wait's end was stored, and gone when the engine died (2 of 96 runs at load 12-23).
      const jsm = await jetstreamManager(stack.nc);
      await until(async () => {
        const info = await jsm.consumers.info(STREAMS.workflowCommands, "compozy-workflow-executor");
        return info.num_ack_pending === 0 && info.num_pending === 0;
      });
      await client.signal(execId, "go", { n: 7 });
      await until(() => Promise.resolve(attempts.length === 1));
      await stack.killEngine();
      const subject = `compozy.${execId}.workflow.cmds.${execId}.signal`;
      const taken = await jsm.streams.getMessage(STREAMS.workflowCommands, { last_by_subj: subject });
      assert.ok(taken, `the signal's message is still there (${subject})`);
      await jsm.streams.deleteMessage(STREAMS.workflowCommands, taken.seq, false);
      await client.signal(execId, "go", { n: 7 });
      stack.restartEngine();
      const state = await client.waitForEnd(execId, 30_000);
      const history = (await client.events(execId)).map((e) => e.type);
      // Before the fix: RUNNING (the wait for the end timed out), the signal dropped as moot.
      assert.equal(state.status, "SUCCESS", history.join(", "));
      assert.deepEqual(state.output, { got: 7 });
      assert.deepEqual(attempts, [1, 2]);
    } finally {
      await stack.close();
    }
  },
});
