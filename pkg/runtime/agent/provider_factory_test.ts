import assert from "node:assert/strict";
import type { LanguageModel } from "ai";
import type { ModelSpec } from "./agent_call.ts";
import { AgentFailure } from "./agent_failure.ts";
import { resolveModel } from "./provider_factory.ts";

/** The provider id and model id an AI SDK model reports. */
function identify(model: LanguageModel): [string, string] {
  assert.equal(typeof model, "object");
  const { provider, modelId } = model as { provider: string; modelId: string };
  return [provider, modelId];
}

Deno.test("resolveModel builds each provider's model", async (t) => {
  const cases: Array<[ModelSpec, string]> = [
    [{ provider: "openai", model: "gpt-4o-mini", api_key: "k" }, "openai.chat"],
    [
      { provider: "openai-compatible", model: "llama3.1", base_url: "http://127.0.0.1:8000/v1" },
      "openai-compatible.chat",
    ],
    [{ provider: "anthropic", model: "claude-sonnet-4-5", api_key: "k" }, "anthropic.messages"],
    [{ provider: "google", model: "gemini-2.5-flash", api_key: "k" }, "google.generative-ai"],
    [{ provider: "groq", model: "llama-3.3-70b-versatile", api_key: "k" }, "groq.chat"],
    [{ provider: "ollama", model: "llama3.1" }, "ollama.responses"],
  ];
  for (const [spec, providerId] of cases) {
    await t.step(spec.provider, async () => {
      const { model, providerOptions } = await resolveModel(spec);
      assert.deepEqual(identify(model), [providerId, spec.model]);
      assert.equal(typeof providerOptions, "object");
    });
  }

  await t.step("OpenAI-style providers send the output schema non-strict", async () => {
    assert.deepEqual((await resolveModel(cases[0][0])).providerOptions, {
      openai: { strictJsonSchema: false },
    });
    assert.deepEqual((await resolveModel(cases[1][0])).providerOptions, {
      openaiCompatible: { strictJsonSchema: false },
    });
    assert.deepEqual((await resolveModel(cases[4][0])).providerOptions, {
      groq: { strictJsonSchema: false },
    });
  });
});

Deno.test("resolveModel refuses a bad spec with agent_config_invalid naming the field", async (t) => {
  const cases: Array<[string, ModelSpec, string, RegExp]> = [
    [
      "openai-compatible without base_url",
      { provider: "openai-compatible", model: "m" },
      "base_url",
      /is missing/,
    ],
    [
      "a base_url that is not a URL",
      { provider: "openai", model: "m", base_url: "localhost:1234" },
      "base_url",
      /not an http\(s\) URL/,
    ],
    ["an empty model", { provider: "anthropic", model: " " }, "model", /'model' is empty/],
    [
      "timeout_ms 0",
      { provider: "groq", model: "m", timeout_ms: 0 },
      "timeout_ms",
      /positive number: current value is 0/,
    ],
    [
      "an api_key still set to the placeholder of .env.example",
      { provider: "openai", model: "gpt-4o-mini", api_key: "sk-replace-me" },
      "api_key",
      /'api_key' is still a placeholder: set the real key .* or point the agent at a model with provider: mock/,
    ],
    [
      "an unknown provider",
      // A spec decoded from JSON may hold anything.
      { provider: "bedrock" as ModelSpec["provider"], model: "m" },
      "provider",
      /must be one of openai, /,
    ],
  ];
  for (const [name, spec, field, message] of cases) {
    await t.step(name, async () => {
      await assert.rejects(() => resolveModel(spec), (error: unknown) => {
        assert.ok(error instanceof AgentFailure);
        assert.equal(error.code, "agent_config_invalid");
        assert.equal(error.retryable, false);
        assert.deepEqual(error.details, { field });
        assert.match(error.message, message);
        return true;
      });
    });
  }
});
