/**
 * A re-run through the real engine (nats-server, orchestrator, state manager): the start carries `rerun_of`
 * durably, so the state names the first execution both at once and after the state manager folds the end.
 */
import assert from "node:assert/strict";
import { scriptedRuntime, startEngineHarness } from "../support/engine.ts";

Deno.test("a re-run's state names the execution it re-runs, from its durable start", async () => {
  const h = await startEngineHarness({
    "compozy.yaml": "name: rerun\nworkflows:\n  - source: ./wf.yaml\n",
    "wf.yaml": "id: main\ntools:\n  - id: echo\n    execute: ./t.ts\n" +
      "tasks:\n  - id: only\n    use: tool(id=echo)\n    with: { v: '{{ .workflow.input.v }}' }\n",
    "t.ts": "export default (input: unknown) => input;\n",
  });
  const runtime = scriptedRuntime(h.bus, { echo: (input) => input });
  try {
    const client = h.engine.client;
    const first = await client.trigger("main", { v: 1 });
    assert.deepEqual((await client.waitForEnd(first.execId, 15_000)).rerun_of, null);
    const again = await client.trigger("main", { v: 2 }, { rerunOf: first.execId });
    assert.deepEqual((await client.get(again.execId))?.rerun_of, first.execId);
    const ended = await client.waitForEnd(again.execId, 15_000);
    assert.deepEqual([ended.status, ended.rerun_of], ["SUCCESS", first.execId]);
  } finally {
    runtime.stop();
    await h.close();
  }
});
