/**
 * An agent's tool calls run through the same ToolRunner path as tool tasks (pkg/runtime/service.ts,
 * `runOwnTool`), so a tool's `timeout` bounds its run from when the call enters its sandbox there too (outside
 * review D1). The tool's module takes 1.5 s to load, its `timeout` is 300 ms: before, the agent's call failed
 * `tool_timeout` "No sandbox ... was ready before the call's time limit" and the model was shown that failure.
 * Real nats-server, engine, runtime, sandboxes; a scripted model.
 */
import assert from "node:assert/strict";
import { startRuntime } from "../../pkg/runtime/service.ts";
import { startEngineHarness } from "../support/engine.ts";

const project = {
  "compozy.yaml": `name: agent-wait
workflows:
  - source: ./wf.yaml
models:
  - id: scripted
    provider: mock
    model: scripted
    mock:
      replies:
        dig:
          - { tool_calls: [{ tool: slow, input: { ms: 10 } }] }
          - { text: "dug" }
`,
  "wf.yaml": `id: dig
tools:
  - id: slow
    execute: ./slow.ts
    timeout: 300ms
agents:
  - id: digger
    config: { $model: scripted }
    instructions: Dig.
    tools: [slow]
    actions: [{ id: dig, prompt: dig }]
tasks:
  - id: a
    use: agent(id=digger)
    action: dig
`,
  "slow.ts": "await new Promise((r) => setTimeout(r, 1_500));\n" +
    "export default async (input: { ms: number }) => {\n" +
    "  await new Promise((r) => setTimeout(r, input.ms));\n  return { slept: input.ms };\n};\n",
};

Deno.test({
  name: "an agent's tool call with a short timeout waits for its sandbox's slow start, then runs (review D1)",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const h = await startEngineHarness(project);
    const runtime = startRuntime({ nc: h.nc, bus: h.bus });
    try {
      const { execId } = await h.engine.client.trigger("dig", {});
      const state = await h.engine.client.waitForEnd(execId, 60_000);
      assert.equal(state.status, "SUCCESS", JSON.stringify(state.error));
      const ended = (await h.engine.client.events(execId)).filter((e) => e.type === "agent.tool_call_ended");
      assert.equal(ended.length, 1, JSON.stringify(ended.map((e) => e.data)));
      const data = JSON.stringify(ended[0].data);
      assert.doesNotMatch(data, /tool_timeout|No sandbox/, data);
      assert.match(data, /slept/, data);
    } finally {
      await runtime.stop();
      await h.close();
    }
  },
});
