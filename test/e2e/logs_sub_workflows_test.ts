/**
 * `GET /api/logs?exec_id=` answers the log records of an execution and of its sub-workflows (its route's
 * summary, `compozy executions logs`), at every level: a sub-workflow's own sub-workflows are its records too,
 * as a root's sub-workflows are the root's. Against a real `compozy dev` (real NATS, runtime, HTTP).
 */
import assert from "node:assert/strict";
import { startDevOn } from "./support/dev_server.ts";

const FILES: Record<string, string> = {
  "compozy.yaml": "name: log-levels\nworkflows:\n  - source: ./top.yaml\n  - source: ./mid.yaml\n" +
    "  - source: ./leaf.yaml\n",
  "say.ts": `export default (input: { who: string }) => {
  console.log("said by " + input.who);
  return {};
};
`,
  "top.yaml": `id: top
tools: [{ id: say, execute: ./say.ts }]
tasks:
  - { id: hello, use: tool(id=say), with: { who: top } }
  - { id: down, use: workflow(id=mid) }
`,
  "mid.yaml": `id: mid
tools: [{ id: say, execute: ./say.ts }]
tasks:
  - { id: hello, use: tool(id=say), with: { who: mid } }
  - { id: down, use: workflow(id=leaf) }
`,
  "leaf.yaml": `id: leaf
tools: [{ id: say, execute: ./say.ts }]
tasks:
  - { id: hello, use: tool(id=say), with: { who: leaf } }
`,
};

Deno.test({
  name: "an execution's log records hold its sub-workflows' at every level",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const dev = await startDevOn(FILES, { COMPOZY_LOG_LEVEL: "info" });
    try {
      const state = await dev.run("top");
      assert.equal(state.status, "SUCCESS", JSON.stringify(state).slice(0, 500));
      const execIdOf = async (workflowId: string) => {
        const list = await (await dev.fetch(`/api/executions?workflow_id=${workflowId}`)).json();
        assert.equal(list.items.length, 1, JSON.stringify(list));
        return list.items[0].exec_id as string;
      };
      const said = async (execId: string) => {
        const response = await dev.fetch(`/api/logs?exec_id=${execId}`);
        assert.equal(response.status, 200);
        const page = await response.json();
        return page.items.map((r: { message: string; workflow_id: string }) =>
          `${r.workflow_id}: ${r.message}`
        );
      };
      // Records reach the log stream on their own path, a moment after the execution's end.
      const everything = ["top: said by top", "mid: said by mid", "leaf: said by leaf"];
      for (const deadline = Date.now() + 30_000; Date.now() < deadline;) {
        if ((await said(state.exec_id)).length >= everything.length) break;
        await new Promise((r) => setTimeout(r, 200));
      }
      assert.deepEqual(await said(state.exec_id), everything);
      assert.deepEqual(await said(await execIdOf("mid")), ["mid: said by mid", "leaf: said by leaf"]);
      assert.deepEqual(await said(await execIdOf("leaf")), ["leaf: said by leaf"]);
    } finally {
      await dev.close();
    }
  },
});
