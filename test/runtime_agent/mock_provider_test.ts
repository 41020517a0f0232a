/**
 * The `mock` provider: scripted replies per action drive the real agent loop — tool calls run through
 * `callTool`, outputs are checked against the action's schema (with the one repair), usage is reported.
 */

import assert from "node:assert/strict";
import { type ModelSpec, runAgent } from "../../pkg/runtime/agent/mod.ts";
import { ADVICE_SCHEMA, agentCall, fakeSandbox, WEATHER_TOOL } from "./_agent_call.ts";

function mockModel(mock: ModelSpec["mock"]): ModelSpec {
  return { provider: "mock", model: "scripted", mock };
}

Deno.test("mock provider", async (t) => {
  await t.step(
    "a scripted tool call runs through the sandbox, then the scripted output is the result",
    async () => {
      const sandbox = fakeSandbox({ weather_tool: (input) => ({ ...(input as object), tempC: 14 }) });
      const result = await runAgent(agentCall(
        mockModel({
          replies: {
            advise: [
              {
                tool_calls: [{ tool: "weather_tool", input: { city: "Lisbon" } }],
                usage: { input_tokens: 7 },
              },
              { output: { advice: "Take a light jacket" }, usage: { input_tokens: 20, output_tokens: 5 } },
            ],
          },
        }),
        { tools: [WEATHER_TOOL], outputSchema: ADVICE_SCHEMA, callTool: sandbox.callTool },
      ));
      assert.deepEqual(sandbox.calls, [{ toolId: "weather_tool", input: { city: "Lisbon" } }]);
      assert.equal(result.ok, true);
      if (!result.ok) return;
      assert.deepEqual(result.output, { advice: "Take a light jacket" });
      assert.equal(result.steps, 2);
      assert.equal(result.usage.inputTokens, 27);
      assert.equal(result.usage.outputTokens > 5, true, "the tool-call reply counts its own output tokens");
    },
  );

  await t.step("a script for '<agent>.<action>' wins over '<action>' and 'default'", async () => {
    const result = await runAgent(agentCall(mockModel({
      replies: {
        default: [{ text: "default" }],
        advise: [{ text: "action" }],
        "forecaster.advise": [{ text: "agent and action" }],
      },
    })));
    assert.deepEqual(result.ok && result.output, { text: "agent and action" });
  });

  await t.step(
    "an output that fails the schema gets the repair request, then agent_output_invalid",
    async () => {
      const result = await runAgent(
        agentCall(mockModel({ replies: { advise: [{ output: { layers: 2 } }] } }), {
          outputSchema: ADVICE_SCHEMA,
        }),
      );
      assert.equal(result.ok, false);
      if (result.ok) return;
      assert.equal(result.failure.code, "agent_output_invalid");
      assert.match(result.failure.message, /\/advice: is required/);
    },
  );

  await t.step("a repair reply that fixes the output succeeds on the next scripted reply", async () => {
    const result = await runAgent(agentCall(
      mockModel({
        replies: { advise: [{ output: { layers: 2 } }, { output: { advice: "coat", layers: 2 } }] },
      }),
      { outputSchema: ADVICE_SCHEMA },
    ));
    assert.deepEqual(result.ok && [result.output, result.steps], [{ advice: "coat", layers: 2 }, 2]);
  });

  await t.step("a tool call the agent does not have ends the call with agent_unknown_tool", async () => {
    const result = await runAgent(
      agentCall(mockModel({ replies: { advise: [{ tool_calls: [{ tool: "nope" }] }] } })),
    );
    assert.equal(!result.ok && result.failure.code, "agent_unknown_tool");
  });

  await t.step("a last reply that keeps asking for tools stops at max_steps", async () => {
    const sandbox = fakeSandbox({ weather_tool: () => ({ tempC: 1 }) });
    const result = await runAgent(agentCall(
      mockModel({
        replies: { advise: [{ tool_calls: [{ tool: "weather_tool", input: { city: "Oslo" } }] }] },
      }),
      { tools: [WEATHER_TOOL], maxSteps: 3, callTool: sandbox.callTool },
    ));
    assert.equal(!result.ok && result.failure.code, "agent_max_steps");
    assert.equal(sandbox.calls.length, 2);
  });

  await t.step("without a script the reply is generated: a value the schema accepts, or text", async () => {
    const structured = await runAgent(agentCall(mockModel(undefined), {
      outputSchema: {
        type: "object",
        properties: {
          advice: { type: "string" },
          level: { enum: ["low", "high"] },
          n: { type: "integer", minimum: 2 },
        },
        required: ["advice", "level", "n"],
      },
    }));
    assert.deepEqual(structured.ok && structured.output, { advice: "mock", level: "low", n: 2 });
    const text = await runAgent(agentCall(mockModel({})));
    assert.deepEqual(text.ok && text.output, { text: "mock reply from agent 'forecaster' action 'advise'" });
  });

  await t.step("a malformed script is agent_config_invalid naming the reply", async () => {
    const result = await runAgent(agentCall(mockModel({ replies: { advise: [{ text: "a", output: {} }] } })));
    assert.equal(!result.ok && result.failure.code, "agent_config_invalid");
    assert.match(!result.ok ? result.failure.message : "", /mock\.replies\.advise\[0\]/);
  });

  await t.step("'mock' on another provider is refused", async () => {
    const result = await runAgent(agentCall({ provider: "openai", model: "x", api_key: "k", mock: {} }));
    assert.equal(!result.ok && result.failure.code, "agent_config_invalid");
  });
});

Deno.test("mock provider: a reply's text streams word by word to onDelta", async () => {
  const deltas: { turn: number; text: string }[] = [];
  const text = "Take a light jacket, it may rain.";
  const result = await runAgent({
    ...agentCall(mockModel({ replies: { advise: [{ text }] } })),
    onDelta: (delta) => deltas.push(delta),
  });
  assert.deepEqual(result.ok && result.output, { text });
  assert.deepEqual(deltas.map((d) => d.text), ["Take ", "a ", "light ", "jacket, ", "it ", "may ", "rain."]);
  assert.ok(deltas.every((d) => d.turn === deltas[0].turn), "one reply, one turn");
});
