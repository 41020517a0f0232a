/**
 * The tool-calling loop: every tool call goes through `callTool`, results and errors go back to the model,
 * and the loop is bounded by max_steps; a tool the agent does not have ends the call.
 */

import assert from "node:assert/strict";
import { runAgent } from "../../pkg/runtime/agent/mod.ts";
import { startMockOpenAI } from "../support/mock_llm/mod.ts";
import { ADVICE_SCHEMA, agentCall, fakeSandbox, openAIModel, WEATHER_TOOL } from "./_agent_call.ts";

const SORRY_TOOL = { id: "sorry_tool", description: "Apologises" };

Deno.test("runAgent: tool-calling loop", async (t) => {
  await using mock = startMockOpenAI();
  const model = openAIModel(mock);

  await t.step("tools run through callTool, their results reach the model, then the answer", async () => {
    const sandbox = fakeSandbox({
      weather_tool: (input) => ({ city: (input as { city: string }).city, tempC: 14 }),
      sorry_tool: () => "sorry",
    });
    mock.enqueue(
      {
        type: "tool_calls",
        calls: [
          { id: "c1", name: "weather_tool", arguments: { city: "Lisbon" } },
          { id: "c2", name: "sorry_tool", arguments: {} },
        ],
      },
      { type: "tool_calls", calls: [{ id: "c3", name: "weather_tool", arguments: { city: "Porto" } }] },
      { type: "json", value: { advice: "Coat in Porto, jacket in Lisbon" } },
    );
    const before = mock.requests.length;
    const result = await runAgent(agentCall(model, {
      tools: [WEATHER_TOOL, SORRY_TOOL],
      outputSchema: ADVICE_SCHEMA,
      callTool: sandbox.callTool,
    }));
    assert.deepEqual(result, {
      ok: true,
      output: { advice: "Coat in Porto, jacket in Lisbon" },
      usage: { inputTokens: 30, outputTokens: 15, totalTokens: 45 },
      steps: 3,
    });
    assert.deepEqual(sandbox.calls, [
      { toolId: "weather_tool", input: { city: "Lisbon" } },
      { toolId: "sorry_tool", input: {} },
      { toolId: "weather_tool", input: { city: "Porto" } },
    ]);

    const first = mock.requests[before].body;
    assert.deepEqual(first.tools.map((tool: { function: { name: string } }) => tool.function.name).sort(), [
      "sorry_tool",
      "weather_tool",
    ]);
    const weather = first.tools.find((tool: { function: { name: string } }) =>
      tool.function.name === "weather_tool"
    );
    assert.equal(weather.function.description, "Current weather for a city");
    assert.deepEqual(weather.function.parameters.required, ["city"]);

    const toolMessages = mock.requests[before + 1].body.messages.filter((m: { role: string }) =>
      m.role === "tool"
    );
    assert.deepEqual(toolMessages, [
      { role: "tool", tool_call_id: "c1", content: '{"city":"Lisbon","tempC":14}' },
      { role: "tool", tool_call_id: "c2", content: "sorry" },
    ]);
  });

  await t.step("a failing tool's message goes back to the model and the loop goes on", async () => {
    const sandbox = fakeSandbox({
      weather_tool: () => {
        throw new Error("weather service unavailable");
      },
    });
    mock.enqueue(
      { type: "tool_calls", calls: [{ id: "e1", name: "weather_tool", arguments: { city: "Faro" } }] },
      { type: "text", text: "I could not get the weather; bring a jacket anyway." },
    );
    const before = mock.requests.length;
    const result = await runAgent(agentCall(model, { tools: [WEATHER_TOOL], callTool: sandbox.callTool }));
    assert.ok(result.ok);
    assert.deepEqual(result.output, { text: "I could not get the weather; bring a jacket anyway." });
    const toolMessage = mock.requests[before + 1].body.messages.find((m: { role: string }) =>
      m.role === "tool"
    );
    assert.equal(toolMessage.tool_call_id, "e1");
    assert.match(toolMessage.content, /weather service unavailable/);
  });

  await t.step("malformed arguments are reported to the model, the tool does not run", async () => {
    const sandbox = fakeSandbox({ weather_tool: () => ({ tempC: 20 }) });
    mock.enqueue(
      { type: "tool_calls", calls: [{ id: "m1", name: "weather_tool", arguments: '{"city": "Faro"' }] },
      { type: "tool_calls", calls: [{ id: "m2", name: "weather_tool", arguments: { city: "Faro" } }] },
      { type: "text", text: "Sunny in Faro." },
    );
    const before = mock.requests.length;
    const result = await runAgent(agentCall(model, { tools: [WEATHER_TOOL], callTool: sandbox.callTool }));
    assert.ok(result.ok, JSON.stringify(result));
    assert.deepEqual(sandbox.calls, [{ toolId: "weather_tool", input: { city: "Faro" } }]);
    const toolMessage = mock.requests[before + 1].body.messages.find((m: { role: string }) =>
      m.role === "tool"
    );
    assert.equal(toolMessage.tool_call_id, "m1");
    assert.match(toolMessage.content, /Invalid input for tool weather_tool/);
  });

  await t.step(
    "still calling tools at max_steps fails agent_max_steps; the last calls do not run",
    async () => {
      const sandbox = fakeSandbox({ weather_tool: () => ({ tempC: 20 }) });
      const loop = {
        type: "tool_calls" as const,
        calls: [{ name: "weather_tool", arguments: { city: "Loop" } }],
      };
      mock.enqueue(loop, loop, loop);
      const result = await runAgent(
        agentCall(model, { tools: [WEATHER_TOOL], maxSteps: 3, callTool: sandbox.callTool }),
      );
      assert.equal(result.ok, false);
      assert.equal(result.failure.code, "agent_max_steps");
      assert.equal(result.failure.retryable, false);
      assert.match(result.failure.message, /after 3 steps/);
      assert.deepEqual(result.failure.details, { maxSteps: 3, pendingTools: ["weather_tool"] });
      assert.equal(sandbox.calls.length, 2);
      assert.deepEqual(result.usage, { inputTokens: 30, outputTokens: 15, totalTokens: 45 });
    },
  );

  await t.step("max_steps 1 allows a direct answer", async () => {
    mock.enqueue({ type: "text", text: "No tools needed." });
    const result = await runAgent(agentCall(model, { tools: [WEATHER_TOOL], maxSteps: 1 }));
    assert.ok(result.ok);
    assert.equal(result.steps, 1);
  });

  await t.step("a tool the agent does not have ends the call before any tool of that step runs", async () => {
    const sandbox = fakeSandbox({ weather_tool: () => ({ tempC: 20 }) });
    mock.enqueue({
      type: "tool_calls",
      calls: [
        { name: "weather_tool", arguments: { city: "Lisbon" } },
        { name: "delete_everything", arguments: {} },
      ],
    });
    const result = await runAgent(agentCall(model, { tools: [WEATHER_TOOL], callTool: sandbox.callTool }));
    assert.equal(result.ok, false);
    assert.equal(result.failure.code, "agent_unknown_tool");
    assert.equal(result.failure.retryable, false);
    assert.match(result.failure.message, /tool 'delete_everything', which the agent does not have/);
    assert.deepEqual(result.failure.details, { tool: "delete_everything", available: ["weather_tool"] });
    assert.deepEqual(sandbox.calls, []);
    assert.deepEqual(result.usage, { inputTokens: 10, outputTokens: 5, totalTokens: 15 });
  });

  await t.step("an agent without tools calling one fails the same way", async () => {
    mock.enqueue({ type: "tool_calls", calls: [{ name: "weather_tool", arguments: {} }] });
    const result = await runAgent(agentCall(model));
    assert.equal(result.ok, false);
    assert.equal(result.failure.code, "agent_unknown_tool");
    assert.match(result.failure.message, /its tools: none/);
  });

  await t.step("a repair request turns tools off", async () => {
    mock.enqueue({ type: "text", text: "not json" }, { type: "json", value: { advice: "Hat" } });
    const before = mock.requests.length;
    const result = await runAgent(agentCall(model, { tools: [WEATHER_TOOL], outputSchema: ADVICE_SCHEMA }));
    assert.ok(result.ok);
    assert.equal(mock.requests[before].body.tool_choice, "auto");
    assert.equal(mock.requests[before + 1].body.tool_choice, "none");
  });

  await t.step("a tool call in answer to the repair request is agent_output_invalid", async () => {
    mock.enqueue(
      { type: "text", text: "not json" },
      { type: "tool_calls", calls: [{ name: "weather_tool", arguments: { city: "x" } }] },
    );
    const result = await runAgent(agentCall(model, { tools: [WEATHER_TOOL], outputSchema: ADVICE_SCHEMA }));
    assert.equal(result.ok, false);
    assert.equal(result.failure.code, "agent_output_invalid");
    assert.match(result.failure.message, /called a tool instead of repairing/);
  });

  await t.step("nothing scripted is left over", () => assert.equal(mock.remaining, 0));
});
