/**
 * 000445e made a sub-workflow's activation look up its parent's pending cancel. One level only: a grandchild
 * whose timer is due when an engine restarts, while the root's cancel (taken by the engine that died) waits
 * out its ack wait, finds no pending cancel of its own parent (that parent is canceled only once the root
 * handles its cancel) and runs its next step after the user's cancel. Real nats-server, real engine processes.
 */
import assert from "node:assert/strict";
import { jetstreamManager } from "@nats-io/jetstream";
import { STREAMS } from "../../pkg/nats/mod.ts";
import { startCrashStack } from "../support/engine_process.ts";
import { until } from "../support/until.ts";

Deno.test({
  name:
    "a root's cancel its engine took just before it died wins over its grandchild's timer due at the restart",
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
        "kid.yaml": "id: kid\ntasks:\n  - { id: sub, use: workflow(id=grand) }\n",
        "grand.yaml": "id: grand\ntools:\n  - id: after\n    execute: ./t.ts\ntasks:\n" +
          "  - { id: nap, type: sleep, duration: 3s }\n  - { id: next, use: tool(id=after) }\n",
      },
      { after: () => calls.push("after") },
      { instanceId: "e", ackWaitMs: 20_000 },
    );
    const { client } = stack;
    try {
      const { execId } = await client.trigger("main", {});
      let grandId = "";
      await until(async () => {
        grandId = (await client.list({ workflowId: "grand" })).items[0]?.exec_id ?? "";
        return grandId !== "" &&
          (await client.events(grandId)).some((e) => e.type === "task.waiting_started");
      });
      stack.stopEngine();
      await client.cancel(execId, "stop it");
      const jsm = await jetstreamManager(stack.nc);
      await until(async () =>
        (await jsm.consumers.info(STREAMS.workflowCommands, "compozy-workflow-executor")).num_ack_pending > 0
      );
      await stack.killEngine();
      // The grandchild's timer is due when the next engine starts; the root's cancel comes back after 20 s.
      await new Promise((r) => setTimeout(r, 3_000));
      stack.restartEngine({ instanceId: "e2" });
      const grand = await client.waitForEnd(grandId, 60_000);
      const history = (await client.events(grandId)).map((e) => e.type);
      assert.equal(grand.status, "CANCELED", history.join(", "));
      assert.deepEqual(calls, []);
      assert.equal((await client.waitForEnd(execId, 60_000)).status, "CANCELED");
    } finally {
      await stack.close();
    }
  },
});
