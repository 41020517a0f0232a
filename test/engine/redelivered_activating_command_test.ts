/**
 * The copy of an execution's activating command, delivered again to the same engine while its driver runs
 * (the engine missed the command's heartbeats past the ack wait: a loaded or just-started process, here a
 * SIGSTOP), must not take the command out of the work queue: it is what brings the execution back when the
 * engine dies. A signal's copy went to the active driver, found its wait taken by the activation ("no wait for
 * it took it"), and was acknowledged; the next SIGKILL left nothing to redeliver, and the execution stayed
 * RUNNING for good (model seed 121065). Real engine processes, real nats-server, a scripted runtime in this
 * process.
 */
import assert from "node:assert/strict";
import { jetstreamManager } from "@nats-io/jetstream";
import { STREAMS } from "../../pkg/nats/mod.ts";
import { startCrashStack } from "../support/engine_process.ts";
import { until } from "../support/until.ts";

const DURABLE = "compozy-workflow-executor";
const TRIES = 5;

Deno.test({
  name: "a signal's copy delivered again to its own active execution keeps the command until it ends",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const attempts = new Map<string, number[]>();
    const stack = await startCrashStack(
      {
        "compozy.yaml": "name: redelivered-activation\nworkflows:\n  - source: ./wf.yaml\n",
        "t.ts": "",
        "wf.yaml": "id: main\ntools:\n  - id: long\n    execute: ./t.ts\ntasks:\n" +
          "  - { id: w, type: wait, signal: go }\n" +
          '  - { id: next, use: tool(id=long), with: { got: "{{ .tasks.w.output.n }}" } }\n',
      },
      {
        // An execution's first call hangs (its engine dies meanwhile); the re-run answers.
        long: (input, call) => {
          const execId = call.workflow?.execId ?? "";
          const seen = attempts.get(execId) ?? [];
          attempts.set(execId, [...seen, call.attempt]);
          return seen.length === 0 ? new Promise(() => {}) : input;
        },
      },
      { instanceId: "e" },
    );
    const { client } = stack;
    const jsm = await jetstreamManager(stack.nc);
    const queued = (subject: string) =>
      jsm.streams.getMessage(STREAMS.workflowCommands, { last_by_subj: subject }).then(
        (m) => m !== null,
        () => false,
      );
    try {
      let execId = "";
      for (let tries = 1;; tries++) {
        ({ execId } = await client.trigger("main", {}));
        await until(async () => (await client.events(execId)).some((e) => e.type === "task.waiting_started"));
        // Parked, its execute command acknowledged: the signal's message is the one that activates it.
        await until(async () => !await queued(`compozy.${execId}.workflow.cmds.${execId}.execute`));
        // Stopped while the signal is delivered, and past its 1 s ack wait: the server delivers it again, to
        // this very engine, which takes both deliveries at once when it runs again. Only while the engine's
        // pull request lasts (5 s): one that expires first gets no copy, and a new execution is tried.
        const before = await jsm.consumers.info(STREAMS.workflowCommands, DURABLE);
        stack.stopEngine();
        await client.signal(execId, "go", { n: 7 });
        let twice = false;
        await until(async () => {
          const info = await jsm.consumers.info(STREAMS.workflowCommands, DURABLE);
          twice = info.delivered.consumer_seq >= before.delivered.consumer_seq + 2;
          return twice || info.num_waiting === 0;
        }, 30_000);
        stack.continueEngine();
        if (twice) break;
        assert.ok(
          tries < TRIES,
          `the signal was never delivered twice to the stopped engine in ${TRIES} tries`,
        );
      }
      await until(() => Promise.resolve(attempts.get(execId)?.length === 1));
      // The copy is handled at once; acknowledged (the old code), the command leaves the work queue.
      const signal = `compozy.${execId}.workflow.cmds.${execId}.signal`;
      await until(async () => !await queued(signal), 3_000).catch(() => {});
      assert.ok(
        await queued(signal),
        "the activating signal is still in the work queue while its execution runs",
      );
      await stack.killEngine();
      // The same instance id: it takes its lease back at once.
      stack.restartEngine();
      const state = await client.waitForEnd(execId, 30_000);
      const history = (await client.events(execId)).map((e) => e.type);
      assert.equal(state.status, "SUCCESS", history.join(", "));
      assert.deepEqual(state.output, { got: 7 });
      assert.deepEqual(attempts.get(execId), [1, 2]);
    } finally {
      await stack.close();
    }
  },
});
