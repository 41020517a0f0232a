/**
 * A mock model's replies are rendered with the action's `.input` (the task's rendered `with`), as its prompt
 * is (CONFIG.md: "An action's prompt is rendered with `.input` = the task's rendered `with`"). Before, the
 * model config was rendered without it: a reply naming `{{ .input.city }}` passed `validate` and failed every
 * run with "missing value at .input.city: the context has no "input"". Engine, sandboxed runtime and the mock
 * provider on a real nats-server.
 */
import assert from "node:assert/strict";
import { startRuntime } from "../../pkg/runtime/service.ts";
import { startEngineHarness } from "../support/engine.ts";

const PROJECT = {
  "compozy.yaml": `name: mock-input
workflows:
  - source: ./wf.yaml
models:
  - id: offline
    provider: mock
    model: scripted
    mock:
      replies:
        advise:
          - tool_calls: [{ tool: weather, input: { city: "{{ .input.city }}" } }]
          - output: { advice: "coat in {{ .input.city }}" }
`,
  "wf.yaml": `id: main
config:
  input: { type: object, properties: { town: { type: string } }, required: [town] }
tools:
  - id: weather
    execute: ./weather.ts
agents:
  - id: forecaster
    config: { $model: offline }
    instructions: Advise.
    tools: [weather]
    actions:
      - id: advise
        prompt: "Advise about {{ .input.city }}"
        output: { type: object, properties: { advice: { type: string } }, required: [advice] }
tasks:
  - id: advise
    use: agent(id=forecaster)
    action: advise
    with: { city: "{{ .workflow.input.town }}" }
`,
  "weather.ts": "export default (input: { city: string }) => ({ city: input.city, temp: 21 });\n",
};

Deno.test("a mock reply may name the action's .input, as its prompt may", async () => {
  const h = await startEngineHarness(PROJECT);
  const runtime = startRuntime({ nc: h.nc, bus: h.bus });
  try {
    const { execId } = await h.engine.client.trigger("main", { town: "Lisbon" });
    const ended = await h.engine.client.waitForEnd(execId, 60_000);
    assert.equal(ended.status, "SUCCESS", JSON.stringify(ended.error));
    assert.deepEqual(ended.output, { advice: "coat in Lisbon" });
    const called = (await h.engine.client.events(execId)).filter((e) => e.type === "agent.tool_call_ended");
    assert.equal(called.length, 1);
  } finally {
    await runtime.stop();
    await h.close();
  }
});
