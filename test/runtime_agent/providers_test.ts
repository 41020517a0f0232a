/**
 * Every provider is wired to its AI SDK package: Anthropic, OpenAI-compatible, Groq and Ollama run against
 * the loopback mocks; Google (a protocol the mocks do not speak) is checked up to the network.
 */

import assert from "node:assert/strict";
import { type ModelSpec, runAgent } from "../../pkg/runtime/agent/mod.ts";
import { startMockAnthropic, startMockOllama, startMockOpenAI } from "../support/mock_llm/mod.ts";
import { ADVICE_SCHEMA, agentCall, fakeSandbox, WEATHER_TOOL } from "./_agent_call.ts";

Deno.test("runAgent: Anthropic", async (t) => {
  await using mock = startMockAnthropic();
  const model: ModelSpec = {
    provider: "anthropic",
    model: "claude-sonnet-4-5",
    api_key: "test-key",
    base_url: mock.baseUrl,
    max_tokens: 300,
  };

  await t.step("a text reply, with the key and instructions where Anthropic wants them", async () => {
    mock.enqueue({ type: "text", text: "Bring a scarf.", usage: { inputTokens: 21, outputTokens: 4 } });
    const result = await runAgent(agentCall(model));
    assert.deepEqual(result, {
      ok: true,
      output: { text: "Bring a scarf." },
      usage: { inputTokens: 21, outputTokens: 4, totalTokens: 25 },
      steps: 1,
    });
    const { path, headers, body } = mock.requests.at(-1)!;
    assert.equal(path, "/v1/messages");
    assert.equal(headers["x-api-key"], "test-key");
    assert.equal(body.model, "claude-sonnet-4-5");
    assert.equal(body.max_tokens, 300);
    assert.deepEqual(body.system, [{ type: "text", text: "You are a concise weather assistant." }]);
    assert.deepEqual(body.messages, [
      { role: "user", content: [{ type: "text", text: "Advise about clothes in Lisbon" }] },
    ]);
  });

  await t.step("a tool loop, then structured output after one repair", async () => {
    const sandbox = fakeSandbox({ weather_tool: () => ({ tempC: 11 }) });
    mock.enqueue(
      { type: "tool_calls", calls: [{ id: "toolu_a", name: "weather_tool", arguments: { city: "Lisbon" } }] },
      { type: "json", value: { advice: 3 } },
      { type: "json", value: { advice: "Coat" } },
    );
    const before = mock.requests.length;
    const result = await runAgent(
      agentCall(model, { tools: [WEATHER_TOOL], outputSchema: ADVICE_SCHEMA, callTool: sandbox.callTool }),
    );
    assert.deepEqual(result, {
      ok: true,
      output: { advice: "Coat" },
      usage: { inputTokens: 30, outputTokens: 15, totalTokens: 45 },
      steps: 3,
    });
    assert.deepEqual(sandbox.calls, [{ toolId: "weather_tool", input: { city: "Lisbon" } }]);
    const toolResult = mock.requests[before + 1].body.messages.at(-1).content[0];
    assert.equal(toolResult.type, "tool_result");
    assert.equal(toolResult.tool_use_id, "toolu_a");
    assert.match(JSON.stringify(toolResult.content), /tempC/);
    const repair = mock.requests[before + 2].body.messages.at(-1);
    assert.match(JSON.stringify(repair), /\/advice: must be string/);
  });

  await t.step("401 and 429 map as they do for OpenAI", async () => {
    mock.enqueue({ type: "error", status: 401 }, {
      type: "error",
      status: 429,
      headers: { "retry-after": "3" },
    });
    const denied = await runAgent(agentCall(model));
    assert.equal(denied.ok, false);
    assert.equal(denied.failure.code, "agent_provider_auth");
    const limited = await runAgent(agentCall(model));
    assert.equal(limited.ok, false);
    assert.equal(limited.failure.code, "agent_rate_limited");
    assert.equal(limited.failure.retryAfterMs, 3_000);
  });

  await t.step("Anthropic's 529 overload is a retryable provider error", async () => {
    mock.enqueue({ type: "error", status: 529 });
    const result = await runAgent(agentCall(model));
    assert.equal(result.ok, false);
    assert.equal(result.failure.code, "agent_provider_error");
    assert.equal(result.failure.retryable, true);
  });

  assert.equal(mock.remaining, 0);
});

Deno.test("runAgent: OpenAI-style providers on the OpenAI mock", async (t) => {
  await using mock = startMockOpenAI();
  // How each client asks for the output schema alongside function tools.
  // deno-lint-ignore no-explicit-any -- request bodies as the clients send them
  const cases: Array<[ModelSpec, (body: any) => void]> = [
    [
      { provider: "openai-compatible", model: "llama3.1", base_url: mock.baseUrl },
      (body) => assert.equal(body.response_format.json_schema.strict, false),
    ],
    [
      { provider: "groq", model: "llama-3.3-70b-versatile", api_key: "test-key", base_url: mock.baseUrl },
      // This model cannot combine JSON mode with tools, so the SDK adds its `json` tool and requires a tool call.
      (body) => {
        assert.equal(body.tool_choice, "required");
        assert.ok(body.tools.some((tool: { function: { name: string } }) => tool.function.name === "json"));
      },
    ],
  ];
  for (const [spec, checkSchemaRequest] of cases) {
    await t.step(`${spec.provider}: a tool loop and a structured answer`, async () => {
      const sandbox = fakeSandbox({ weather_tool: () => ({ tempC: 25 }) });
      mock.enqueue(
        { type: "tool_calls", calls: [{ name: "weather_tool", arguments: { city: "Seville" } }] },
        { type: "json", value: { advice: "Shorts" } },
      );
      const before = mock.requests.length;
      const result = await runAgent(
        agentCall(spec, { tools: [WEATHER_TOOL], outputSchema: ADVICE_SCHEMA, callTool: sandbox.callTool }),
      );
      assert.ok(result.ok, JSON.stringify(result));
      assert.deepEqual(result.output, { advice: "Shorts" });
      assert.deepEqual(sandbox.calls, [{ toolId: "weather_tool", input: { city: "Seville" } }]);
      assert.equal(mock.requests[before].body.model, spec.model);
      checkSchemaRequest(mock.requests[before].body);
    });
  }

  await t.step("openai-compatible sends no Authorization without an api_key", () => {
    assert.equal(mock.requests[0].headers.authorization, undefined);
  });
});

Deno.test("runAgent: Ollama's native chat API", async () => {
  await using mock = startMockOllama();
  const sandbox = fakeSandbox({ weather_tool: () => ({ tempC: 5 }) });
  mock.enqueue(
    { type: "tool_calls", calls: [{ name: "weather_tool", arguments: { city: "Bergen" } }] },
    { type: "json", value: { advice: "Rain coat" } },
  );
  const result = await runAgent(agentCall(
    { provider: "ollama", model: "llama3.1", base_url: mock.baseUrl },
    { tools: [WEATHER_TOOL], outputSchema: ADVICE_SCHEMA, callTool: sandbox.callTool },
  ));
  assert.ok(result.ok, JSON.stringify(result));
  assert.deepEqual(result.output, { advice: "Rain coat" });
  assert.equal(mock.requests[0].path, "/api/chat");
  assert.deepEqual(mock.requests[0].body.format.required, ["advice"]);
});

Deno.test("runAgent: Google is wired up to the network", async () => {
  // A closed loopback port: the request is built and sent by @ai-sdk/google, and refused.
  const closed = startMockOpenAI();
  await closed.close();
  const result = await runAgent(
    agentCall({
      provider: "google",
      model: "gemini-2.5-flash",
      api_key: "test-key",
      base_url: closed.baseUrl,
    }),
  );
  assert.equal(result.ok, false);
  assert.equal(result.failure.code, "agent_provider_error");
  assert.equal(result.failure.retryable, true);
  // Every request streams (live deltas), so Google's streaming endpoint is the one asked.
  assert.match(result.failure.message, /models\/gemini-2\.5-flash:streamGenerateContent/);
});
