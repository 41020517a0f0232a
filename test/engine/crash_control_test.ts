/**
 * Cancel and pause across an engine's SIGKILL (outside review F8, F9). Real engine processes, real
 * nats-server, a scripted runtime in this process.
 */
import assert from "node:assert/strict";
import { jetstreamManager } from "@nats-io/jetstream";
import { STREAMS } from "../../pkg/nats/mod.ts";
import { type CrashStack, startCrashStack } from "../support/engine_process.ts";
import { until } from "../support/until.ts";

/**
 * The engine is frozen, takes the control `send` stores (its pull is still open) and dies before recording it;
 * the next engine starts 3 s later, after the sleep's timer is due: that timer is its first command, and the
 * control comes back only after the ack wait.
 */
async function controlTakenByDyingEngine(stack: CrashStack, send: () => Promise<unknown>): Promise<void> {
  stack.stopEngine();
  await send();
  const jsm = await jetstreamManager(stack.nc);
  await until(async () =>
    (await jsm.consumers.info(STREAMS.workflowCommands, "compozy-workflow-executor")).num_ack_pending > 0
  );
  await stack.killEngine();
  await new Promise((r) => setTimeout(r, 3_000));
  stack.restartEngine({ instanceId: "e2" });
}

const PROJECT = { "compozy.yaml": "name: crash-control\nworkflows:\n  - source: ./wf.yaml\n", "t.ts": "" };

Deno.test({
  name: "F8: a cancel its engine took just before it died wins over a timer due when the next engine starts",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const calls: string[] = [];
    // A long ack wait: the cancel the dead engine was delivered comes back only after it (30 s by default).
    const stack = await startCrashStack(
      {
        ...PROJECT,
        "wf.yaml": "id: main\ntools:\n  - id: after\n    execute: ./t.ts\ntasks:\n" +
          "  - { id: nap, type: sleep, duration: 3s }\n  - { id: next, use: tool(id=after) }\n",
      },
      { after: () => calls.push("after") },
      { instanceId: "e", ackWaitMs: 20_000 },
    );
    const { client } = stack;
    try {
      const { execId } = await client.trigger("main", {});
      await until(async () => (await client.events(execId)).some((e) => e.type === "task.waiting_started"));
      await controlTakenByDyingEngine(stack, () => client.cancel(execId, "stop it"));
      const state = await client.waitForEnd(execId, 60_000);
      const history = (await client.events(execId)).map((e) => e.type);
      assert.equal(state.status, "CANCELED", history.join(", "));
      assert.deepEqual(calls, []);
      // Nothing after the end: the timer's wake-up is moot.
      assert.equal(history.at(-1), "workflow.canceled", history.join(", "));
    } finally {
      await stack.close();
    }
  },
});

Deno.test({
  name: "F9: a pause its engine took just before it died holds the execution from the next engine's start",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const calls: string[] = [];
    const stack = await startCrashStack(
      {
        ...PROJECT,
        "wf.yaml": "id: main\ntools:\n  - id: after\n    execute: ./t.ts\ntasks:\n" +
          "  - { id: nap, type: sleep, duration: 3s }\n  - { id: next, use: tool(id=after) }\n",
      },
      { after: () => calls.push("after") },
      { instanceId: "e", ackWaitMs: 20_000 },
    );
    const { client } = stack;
    try {
      const { execId } = await client.trigger("main", {});
      await until(async () => (await client.events(execId)).some((e) => e.type === "task.waiting_started"));
      await controlTakenByDyingEngine(stack, () => client.pause(execId));
      // The sleep's timer wakes it; the pause, accepted before, holds the next task back (the pause command
      // itself comes back only after the 20 s ack wait).
      await until(async () => (await client.events(execId)).some((e) => e.type === "task.waiting_ended"));
      await new Promise((r) => setTimeout(r, 2_000));
      const history = (await client.events(execId)).map((e) => e.type);
      assert.equal((await client.get(execId))?.status, "PAUSED", history.join(", "));
      assert.deepEqual(calls, []);
      await client.resume(execId);
      const state = await client.waitForEnd(execId, 60_000);
      assert.equal(state.status, "SUCCESS", JSON.stringify(state.error));
      assert.deepEqual(calls, ["after"]);
    } finally {
      await stack.close();
    }
  },
});

// Model seeds 120095, 120099 (depth 1): the child's overdue sleep woke it first, and its next tool ran after
// the user's cancel of the parent (held by the dead engine for the ack wait). Outside review breaker3 (depth 2):
// 000445e looked at the parent only, and a grandchild ran its tool after the root's cancel.
for (const depth of [1, 2]) {
  const who = depth === 1 ? "a parent's" : "a root's";
  Deno.test({
    name:
      `${who} cancel its engine took just before it died wins over a descendant's timer due at the restart`,
    sanitizeResources: false,
    sanitizeOps: false,
    async fn() {
      const calls: string[] = [];
      const stack = await startCrashStack(
        {
          "compozy.yaml": "name: crash-control\nworkflows:\n  - source: ./wf.yaml\n  - source: ./kid.yaml\n" +
            "  - source: ./grand.yaml\n",
          "t.ts": "",
          "wf.yaml": "id: main\ntasks:\n  - { id: sub, use: workflow(id=kid) }\n",
          "kid.yaml": depth === 1
            ? "id: kid\ntools:\n  - id: after\n    execute: ./t.ts\ntasks:\n" +
              "  - { id: nap, type: sleep, duration: 3s }\n  - { id: next, use: tool(id=after) }\n"
            : "id: kid\ntasks:\n  - { id: sub, use: workflow(id=grand) }\n",
          "grand.yaml": "id: grand\ntools:\n  - id: after\n    execute: ./t.ts\ntasks:\n" +
            "  - { id: nap, type: sleep, duration: 3s }\n  - { id: next, use: tool(id=after) }\n",
        },
        { after: () => calls.push("after") },
        { instanceId: "e", ackWaitMs: 20_000 },
      );
      const { client } = stack;
      const sleeper = depth === 1 ? "kid" : "grand";
      try {
        const { execId } = await client.trigger("main", {});
        let sleeperId = "";
        await until(async () => {
          sleeperId = (await client.list({ workflowId: sleeper })).items[0]?.exec_id ?? "";
          return sleeperId !== "" &&
            (await client.events(sleeperId)).some((e) => e.type === "task.waiting_started");
        });
        // Its timer is due when the next engine starts; the cancel comes back after 20 s.
        await controlTakenByDyingEngine(stack, () => client.cancel(execId, "stop it"));
        const ended = await client.waitForEnd(sleeperId, 60_000);
        const history = (await client.events(sleeperId)).map((e) => e.type);
        assert.equal(ended.status, "CANCELED", history.join(", "));
        assert.deepEqual(calls, []);
        assert.equal((await client.waitForEnd(execId, 60_000)).status, "CANCELED");
      } finally {
        await stack.close();
      }
    },
  });
}
