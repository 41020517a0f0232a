/**
 * The input a task actually ran with is recorded: a tool or sub-workflow task's `with`, rendered, is stored
 * with the attempt's start (`TaskExecutionStarted.input_json`) and shown as the task's `input` by
 * GET /api/executions/{id}, over real HTTP against a real engine and nats-server.
 */
import assert from "node:assert/strict";
import { createApp } from "../../server/app.ts";
import { scriptedRuntime, startEngineHarness } from "../support/engine.ts";

const FILES = {
  "compozy.yaml": "name: inputs\nworkflows:\n  - source: ./wf.yaml\n  - source: ./child.yaml\n",
  "wf.yaml": `id: main
tools:
  - id: echo
    execute: ./t.ts
tasks:
  - id: greet
    use: tool(id=echo)
    with:
      who: "{{ .workflow.input.name }}"
      times: 2
      note: "hello {{ .workflow.input.name }}"
  - id: sub
    use: workflow(id=child)
    with: { from: "{{ .tasks.greet.output.who }}" }
  - id: done
    type: aggregate
    outputs: { ok: true }
`,
  "child.yaml": "id: child\ntasks:\n  - id: only\n    type: aggregate\n    outputs: { v: 1 }\n",
  "t.ts": "export default (input: unknown) => input;\n",
};

Deno.test("a task's rendered input is in GET /api/executions/{id}", async () => {
  const h = await startEngineHarness(FILES);
  const runtime = scriptedRuntime(h.bus, { echo: (input) => input });
  const app = createApp({
    client: h.engine.client,
    project: h.project,
    version: { version: "test", commit: "test" },
    health: { check: () => Promise.resolve({ status: "ok", components: {} }) },
    natsConnected: () => true,
    logs: { logs: () => Promise.resolve({ records: [], next: null }) },
  });
  const server = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen: () => {} }, app.fetch);
  try {
    const { execId } = await h.engine.client.trigger("main", { name: "Ada" });
    assert.equal((await h.engine.client.waitForEnd(execId, 15_000)).status, "SUCCESS");
    const response = await fetch(`http://127.0.0.1:${server.addr.port}/api/executions/${execId}`);
    assert.equal(response.status, 200);
    const state = await response.json() as { tasks: Array<{ task_id: string; input?: unknown }> };
    const inputOf = (id: string) => state.tasks.find((t) => t.task_id === id)?.input;
    assert.deepEqual(inputOf("greet"), { who: "Ada", times: 2, note: "hello Ada" });
    assert.deepEqual(inputOf("sub"), { from: "Ada" });
    // A task that calls nothing has no input of its own.
    assert.equal(inputOf("done"), undefined);
  } finally {
    await server.shutdown();
    runtime.stop();
    await h.close();
  }
});
