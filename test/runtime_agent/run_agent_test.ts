/**
 * runAgent end to end through the real `@ai-sdk/openai` client against the loopback mock: text replies,
 * structured output with its one repair, usage accounting and what the provider is sent.
 */

import assert from "node:assert/strict";
import { AgentFailure, type ModelSpec, runAgent } from "../../pkg/runtime/agent/mod.ts";
import { startMockOpenAI } from "../support/mock_llm/mod.ts";
import { ADVICE_SCHEMA, agentCall, openAIModel } from "./_agent_call.ts";

Deno.test("runAgent: text and structured output", async (t) => {
  await using mock = startMockOpenAI();
  const model = openAIModel(mock);

  await t.step("a text reply is the output { text } when the action has no schema", async () => {
    mock.enqueue({ type: "text", text: "Wear a light jacket.", usage: { inputTokens: 12, outputTokens: 4 } });
    const result = await runAgent(agentCall(model));
    assert.deepEqual(result, {
      ok: true,
      output: { text: "Wear a light jacket." },
      usage: { inputTokens: 12, outputTokens: 4, totalTokens: 16 },
      steps: 1,
    });
  });

  await t.step("the request carries instructions, prompt and model settings", async () => {
    mock.enqueue({ type: "text", text: "ok" });
    const before = mock.requests.length;
    await runAgent(agentCall(openAIModel(mock, { temperature: 0.2, max_tokens: 400 })));
    assert.equal(mock.requests.length, before + 1);
    const { body, headers, path } = mock.requests[before];
    assert.equal(path, "/v1/chat/completions");
    assert.equal(headers.authorization, "Bearer test-key");
    assert.equal(body.model, "gpt-4o-mini");
    assert.equal(body.temperature, 0.2);
    assert.equal(body.max_tokens, 400);
    assert.deepEqual(body.messages, [
      { role: "system", content: "You are a concise weather assistant." },
      { role: "user", content: "Advise about clothes in Lisbon" },
    ]);
  });

  await t.step(
    "a valid structured reply is the validated object; the schema is sent non-strict",
    async () => {
      mock.enqueue({ type: "json", value: { advice: "Take a coat", layers: 2 } });
      const before = mock.requests.length;
      const result = await runAgent(agentCall(model, { outputSchema: ADVICE_SCHEMA }));
      assert.ok(result.ok);
      assert.deepEqual(result.output, { advice: "Take a coat", layers: 2 });
      assert.equal(result.steps, 1);
      const format = mock.requests[before].body.response_format;
      assert.equal(format.type, "json_schema");
      assert.equal(format.json_schema.strict, false);
      assert.deepEqual(format.json_schema.schema.required, ["advice"]);
    },
  );

  await t.step("JSON inside a Markdown fence is accepted without a repair", async () => {
    mock.enqueue({ type: "text", text: '```json\n{"advice":"Scarf"}\n```' });
    const result = await runAgent(agentCall(model, { outputSchema: ADVICE_SCHEMA }));
    assert.ok(result.ok);
    assert.deepEqual(result.output, { advice: "Scarf" });
    assert.equal(mock.remaining, 0);
  });

  await t.step(
    "an invalid reply is repaired once: the problems go back and the fixed reply wins",
    async () => {
      mock.enqueue(
        { type: "json", value: { advice: 42 }, usage: { inputTokens: 20, outputTokens: 3 } },
        { type: "json", value: { advice: "Umbrella" }, usage: { inputTokens: 40, outputTokens: 5 } },
      );
      const before = mock.requests.length;
      const result = await runAgent(agentCall(model, { outputSchema: ADVICE_SCHEMA }));
      assert.deepEqual(result, {
        ok: true,
        output: { advice: "Umbrella" },
        usage: { inputTokens: 60, outputTokens: 8, totalTokens: 68 },
        steps: 2,
      });
      const repairMessages = mock.requests[before + 1].body.messages;
      assert.deepEqual(repairMessages.at(-2), { role: "assistant", content: '{"advice":42}' });
      assert.equal(repairMessages.at(-1).role, "user");
      assert.match(repairMessages.at(-1).content, /\/advice: must be string/);
    },
  );

  await t.step("a reply that is not JSON is repaired too", async () => {
    mock.enqueue({ type: "text", text: "Sure! Take a coat." }, { type: "json", value: { advice: "Coat" } });
    const before = mock.requests.length;
    const result = await runAgent(agentCall(model, { outputSchema: ADVICE_SCHEMA }));
    assert.ok(result.ok);
    assert.deepEqual(result.output, { advice: "Coat" });
    assert.match(mock.requests[before + 1].body.messages.at(-1).content, /not JSON/);
  });

  await t.step(
    "invalid twice is agent_output_invalid, non-retryable, naming the failing fields",
    async () => {
      mock.enqueue(
        { type: "json", value: { layers: -1 } },
        { type: "json", value: { advice: "ok", layers: 1.5, extra: true } },
      );
      const result = await runAgent(
        agentCall(model, { outputSchema: { ...ADVICE_SCHEMA, additionalProperties: false } }),
      );
      assert.equal(result.ok, false);
      const { failure, usage } = result;
      assert.ok(failure instanceof AgentFailure);
      assert.equal(failure.code, "agent_output_invalid");
      assert.equal(failure.retryable, false);
      assert.match(failure.message, /agent 'forecaster' action 'advise'/);
      assert.match(failure.message, /\/layers: must be integer/);
      assert.match(failure.message, /\/extra: is not allowed/);
      assert.deepEqual(failure.details?.problems, [
        { path: "/extra", message: "is not allowed" },
        { path: "/layers", message: "must be integer" },
      ]);
      assert.deepEqual(failure.details?.firstProblems, [
        { path: "/advice", message: "is required" },
        { path: "/layers", message: "must be >= 0" },
      ]);
      assert.deepEqual(usage, { inputTokens: 20, outputTokens: 10, totalTokens: 30 });
    },
  );

  await t.step("nothing scripted is left over", () => assert.equal(mock.remaining, 0));
});

Deno.test("runAgent: a bad call is agent_config_invalid before any request", async (t) => {
  await using mock = startMockOpenAI();
  const cases: Array<[string, Parameters<typeof agentCall>[1], RegExp]> = [
    ["max_steps 0", { maxSteps: 0 }, /'max_steps' must be a positive integer/],
    ["duplicate tool ids", { tools: [{ id: "a" }, { id: "a" }] }, /tool ids must be non-empty and unique/],
    [
      "an output schema that is not a schema",
      { outputSchema: { type: "strnig" } },
      /output schema is not valid/,
    ],
  ];
  for (const [name, overrides, message] of cases) {
    await t.step(name, async () => {
      const result = await runAgent(agentCall(openAIModel(mock), overrides));
      assert.equal(result.ok, false);
      assert.equal(result.failure.code, "agent_config_invalid");
      assert.equal(result.failure.retryable, false);
      assert.match(result.failure.message, message);
    });
  }
  await t.step("an unknown provider", async () => {
    // A spec decoded from JSON may hold anything.
    const result = await runAgent(agentCall({ provider: "mistral" as ModelSpec["provider"], model: "m" }));
    assert.equal(result.ok, false);
    assert.equal(result.failure.code, "agent_config_invalid");
    assert.match(result.failure.message, /'provider' must be one of/);
  });
  await t.step("a model that cannot be made names the agent and the action", async () => {
    // Said "Cannot create a openai-compatible model as 'base_url' is not an http(s) URL…", naming neither
    // (outside review rev35).
    const result = await runAgent(agentCall({ ...openAIModel(mock), base_url: "not a url" }));
    assert.equal(result.ok, false);
    assert.equal(result.failure.code, "agent_config_invalid");
    assert.match(
      result.failure.message,
      /^agent 'forecaster' action 'advise': .*'base_url' is not an http\(s\) URL/,
    );
    assert.deepEqual(result.failure.details, { field: "base_url" });
  });
  assert.equal(mock.requests.length, 0);
});
