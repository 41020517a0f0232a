/**
 * A resume that activates a paused execution and restarts its flow, whose engine then dies while the next
 * task runs (model seed 1141139, finding G13): the activation found the resume itself among the pending
 * controls, applied it and removed it from WORKFLOW_CMDS by sequence, so the flow it restarted ran on under
 * no held command. SIGKILLed there, the execution stayed RUNNING for good: no command of it was left to
 * redeliver. Real engine processes, real nats-server, a scripted runtime in this process.
 */
import assert from "node:assert/strict";
import { jetstreamManager } from "@nats-io/jetstream";
import { STREAMS } from "../../pkg/nats/mod.ts";
import { startCrashStack } from "../support/engine_process.ts";
import { until } from "../support/until.ts";

/**
 * A crash stack running `main` (the given tasks, `long` the tool), whose first call of `long` hangs (its
 * engine dies meanwhile) and whose re-run answers its input; with the reads both tests poll.
 */
async function resumedFlowStack(name: string, tasks: string) {
  const attempts: number[] = [];
  const stack = await startCrashStack(
    {
      "compozy.yaml": `name: ${name}\nworkflows:\n  - source: ./wf.yaml\n`,
      "t.ts": "",
      "wf.yaml": "id: main\ntools:\n  - id: long\n    execute: ./t.ts\ntasks:\n" + tasks,
    },
    {
      long: (input, call) => {
        attempts.push(call.attempt);
        return attempts.length === 1 ? new Promise(() => {}) : input;
      },
    },
    { instanceId: "e" },
  );
  const jsm = await jetstreamManager(stack.nc);
  const unacked = async () =>
    (await jsm.consumers.info(STREAMS.workflowCommands, "compozy-workflow-executor")).num_ack_pending;
  const types = async (execId: string) => (await stack.client.events(execId)).map((e) => e.type);
  return { stack, client: stack.client, attempts, unacked, types };
}

Deno.test({
  name:
    "G13: a resume that restarts a paused flow holds it until it parks or ends, through an engine's death",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const { stack, client, attempts, unacked, types } = await resumedFlowStack(
      "crash-resumed-flow",
      "  - id: w\n    type: wait\n    signal: go\n" +
        "    condition: '{{ .signal.payload.ticket == \"T1\" }}'\n" +
        '  - { id: next, use: tool(id=long), with: { got: "{{ .tasks.w.output.ticket }}" } }\n',
    );
    try {
      const { execId } = await client.trigger("main", {});
      await until(async () => (await types(execId)).includes("task.waiting_started"));
      await client.pause(execId);
      await until(async () => (await types(execId)).includes("workflow.paused") && await unacked() === 0);
      // Taken while paused: the wait ends, the next task is held back by the pause and the driver parks.
      await client.signal(execId, "go", { ticket: "T1" });
      await until(async () => (await types(execId)).includes("task.success") && await unacked() === 0);
      // The resume activates a new driver, which runs the next task: the engine dies while its call runs.
      await client.resume(execId);
      await until(() => Promise.resolve(attempts.length === 1));
      await stack.killEngine();
      // The same instance id: it takes its lease back at once.
      stack.restartEngine();
      const state = await client.waitForEnd(execId, 60_000).catch(async (e) => {
        throw new Error(`no end: ${(await types(execId)).join(", ")}`, { cause: e });
      });
      const history = await types(execId);
      assert.equal(state.status, "SUCCESS", history.join(", "));
      assert.deepEqual(state.output, { got: "T1" });
      assert.deepEqual(attempts, [1, 2]);
      assert.equal(history.filter((t) => t === "workflow.resumed").length, 1, history.join(", "));
    } finally {
      await stack.close();
    }
  },
});

Deno.test({
  name: "G13: a pause sent while the flow a resume restarted runs is not undone by that resume after a crash",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const { stack, client, attempts, unacked, types } = await resumedFlowStack(
      "crash-resumed-flow-paused",
      "  - { id: w, type: wait, signal: go }\n" +
        '  - { id: next, use: tool(id=long), with: { got: "{{ .tasks.w.output.ticket }}" } }\n' +
        '  - { id: fin, type: aggregate, outputs: { got: "{{ .tasks.next.output.got }}" } }\n',
    );
    const count = async (execId: string, type: string) =>
      (await types(execId)).filter((t) => t === type).length;
    try {
      const { execId } = await client.trigger("main", {});
      await until(async () => (await types(execId)).includes("task.waiting_started"));
      await client.pause(execId);
      await until(async () => (await types(execId)).includes("workflow.paused") && await unacked() === 0);
      await client.signal(execId, "go", { ticket: "T1" });
      await until(async () => (await types(execId)).includes("task.success") && await unacked() === 0);
      await client.resume(execId);
      await until(() => Promise.resolve(attempts.length === 1));
      // Paused again while the call the resume's flow started runs: the next task is held back.
      await client.pause(execId);
      await until(async () => await count(execId, "workflow.paused") === 2);
      // An engine that acknowledges the pause once recorded does so within milliseconds (only the resume, which
      // activated the running driver, is then held); one that holds it too keeps both.
      await until(async () => await unacked() === 1, 2_000).catch(() => {});
      await stack.killEngine();
      stack.restartEngine();
      // The call runs again and answers; the pause, the user's last control, still holds the flow back.
      await until(async () =>
        attempts.length === 2 && await count(execId, "task.success") >= 2 && await unacked() === 0
      );
      const paused = await client.get(execId);
      const history = await types(execId);
      assert.equal(paused?.status, "PAUSED", history.join(", "));
      assert.equal(await count(execId, "workflow.resumed"), 1, history.join(", "));
      await client.resume(execId);
      const state = await client.waitForEnd(execId, 60_000);
      assert.equal(state.status, "SUCCESS", (await types(execId)).join(", "));
      assert.deepEqual(state.output, { got: "T1" });
      assert.deepEqual(attempts, [1, 2]);
    } finally {
      await stack.close();
    }
  },
});
