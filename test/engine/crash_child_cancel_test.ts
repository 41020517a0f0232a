/**
 * A parent's cancel across an engine's SIGKILL reaches its sub-workflows (outside review D3: the parent's
 * workflow.canceled was recorded, the engine died before telling the children, and nothing told them again).
 * Real engine process, real nats-server.
 */
import assert from "node:assert/strict";
import { startCrashStack } from "../support/engine_process.ts";
import { until } from "../support/until.ts";

const PROJECT = {
  "compozy.yaml": "name: crash-kids\nworkflows:\n  - source: ./wf.yaml\n  - source: ./stuck.yaml\n",
  "wf.yaml": "id: main\ntasks:\n  - { id: sub, use: workflow(id=stuck) }\n",
  "stuck.yaml": "id: stuck\ntasks:\n  - id: hold\n    type: wait\n    signal: never\n",
};

Deno.test({
  name: "D3: parents canceled just before their engine is killed cancel their children after the restart",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const stack = await startCrashStack(PROJECT, {}, { instanceId: "e" });
    const { client } = stack;
    try {
      const parents: string[] = [];
      for (let i = 0; i < 6; i++) parents.push((await client.trigger("main", {})).execId);
      const children = new Map<string, string>();
      await until(async () => {
        const page = await client.list({ workflowId: "stuck" });
        for (const item of page.items) {
          const doc = await client.get(item.exec_id);
          if (doc?.status === "WAITING" && doc.parent) children.set(doc.parent.exec_id, doc.exec_id);
        }
        return children.size === parents.length;
      });
      // Cancels a few ms apart, and the kill soon after: the parents are at different points of their cancel.
      for (const id of parents) {
        await client.cancel(id, "stop");
        await new Promise((r) => setTimeout(r, 10));
      }
      await new Promise((r) => setTimeout(r, 30));
      await stack.killEngine();
      stack.restartEngine({ instanceId: "e2" });
      for (const parent of parents) {
        assert.equal((await client.waitForEnd(parent, 60_000)).status, "CANCELED");
        const child = children.get(parent)!;
        assert.equal((await client.waitForEnd(child, 30_000)).status, "CANCELED", `child of ${parent}`);
        const types = (await client.events(parent)).map((e) => e.type);
        assert.equal(types.at(-1), "workflow.canceled", types.join(", "));
      }
    } finally {
      await stack.close();
    }
  },
});
