/**
 * The mock servers themselves: each protocol, streaming or not, is understood by the real AI SDK client,
 * and the scripting rules (order, errors, delays, an empty script) hold.
 */

import assert from "node:assert/strict";
import { createAnthropic } from "@ai-sdk/anthropic";
import { createOpenAI } from "@ai-sdk/openai";
import { generateText, jsonSchema, type LanguageModel, streamText, tool } from "ai";
import { createOllama } from "ollama-ai-provider-v2";
import { type MockLlmServer, startMockAnthropic, startMockOllama, startMockOpenAI } from "./mod.ts";

const tools = {
  weather: tool({ inputSchema: jsonSchema({ type: "object", properties: { city: { type: "string" } } }) }),
};

const protocols: Array<[string, () => MockLlmServer, (baseUrl: string) => LanguageModel]> = [
  ["openai", startMockOpenAI, (baseURL) => createOpenAI({ apiKey: "k", baseURL }).chat("gpt-4o-mini")],
  [
    "anthropic",
    startMockAnthropic,
    (baseURL) => createAnthropic({ apiKey: "k", baseURL })("claude-sonnet-4-5"),
  ],
  ["ollama", startMockOllama, (baseURL) => createOllama({ baseURL })("llama3.1")],
];

for (const [name, start, modelAt] of protocols) {
  Deno.test(`mock_llm ${name}: the real client understands every reply, streamed or not`, async (t) => {
    await using mock = start();
    const model = modelAt(mock.baseUrl);
    const toolCall = {
      type: "tool_calls",
      calls: [{ name: "weather", arguments: { city: "Lisbon" } }],
    } as const;
    const usage = { inputTokens: 7, outputTokens: 3 };

    await t.step("text", async () => {
      mock.enqueue({ type: "text", text: "hello", usage });
      const result = await generateText({ model, prompt: "hi", maxRetries: 0 });
      assert.equal(result.text, "hello");
      assert.equal(result.usage.inputTokens, 7);
      assert.equal(result.usage.outputTokens, 3);
    });

    await t.step("a tool call", async () => {
      mock.enqueue(toolCall);
      const result = await generateText({ model, prompt: "hi", tools, maxRetries: 0 });
      assert.deepEqual(result.toolCalls.map((call) => [call.toolName, call.input]), [["weather", {
        city: "Lisbon",
      }]]);
    });

    await t.step("streamed text", async () => {
      mock.enqueue({ type: "text", text: "streamed hello", usage });
      const result = streamText({ model, prompt: "hi", maxRetries: 0 });
      assert.equal(await result.text, "streamed hello");
      assert.equal((await result.usage).outputTokens, 3);
      assert.equal(mock.requests.at(-1)!.body.stream, true);
    });

    await t.step("a streamed tool call", async () => {
      mock.enqueue(toolCall);
      const result = streamText({ model, prompt: "hi", tools, maxRetries: 0 });
      const calls = await result.toolCalls;
      assert.deepEqual(calls.map((call) => [call.toolName, call.input]), [["weather", { city: "Lisbon" }]]);
    });

    await t.step("every request was recorded at the protocol's path", () => {
      assert.equal(mock.requests.length, 4);
      assert.ok(
        mock.requests.every((request) => request.path === new URL(mock.baseUrl).pathname + pathOf(name)),
      );
    });
  });
}

function pathOf(protocol: string): string {
  return protocol === "openai" ? "/chat/completions" : protocol === "anthropic" ? "/messages" : "/chat";
}

Deno.test("mock_llm: scripting rules", async (t) => {
  await using mock = startMockOpenAI();
  const post = (path = "/v1/chat/completions") =>
    fetch(mock.url + path, { method: "POST", body: JSON.stringify({ model: "m", messages: [] }) });

  await t.step("url and baseUrl are loopback", () => {
    assert.match(mock.url, /^http:\/\/127\.0\.0\.1:\d+$/);
    assert.equal(mock.baseUrl, mock.url + "/v1");
  });

  await t.step("an error reply keeps its status, headers and the protocol's error shape", async () => {
    mock.enqueue({ type: "error", status: 429, message: "slow down", headers: { "retry-after": "4" } });
    const response = await post();
    assert.equal(response.status, 429);
    assert.equal(response.headers.get("retry-after"), "4");
    assert.equal((await response.json()).error.message, "slow down");
  });

  await t.step("an error reply can carry any body", async () => {
    mock.enqueue({ type: "error", status: 500, body: { custom: true } });
    const response = await post();
    assert.deepEqual(await response.json(), { custom: true });
  });

  await t.step("replies are served in order; remaining counts what is left", async () => {
    mock.enqueue({ type: "text", text: "one" }, { type: "text", text: "two" });
    assert.equal(mock.remaining, 2);
    assert.equal((await (await post()).json()).choices[0].message.content, "one");
    assert.equal((await (await post()).json()).choices[0].message.content, "two");
    assert.equal(mock.remaining, 0);
  });

  await t.step("a request with nothing scripted gets a 500 naming it", async () => {
    const response = await post();
    assert.equal(response.status, 500);
    assert.match((await response.json()).error.message, /no scripted reply left for request #\d+/);
  });

  await t.step("another route is a 404 and consumes nothing", async () => {
    mock.enqueue({ type: "text", text: "kept" });
    const response = await post("/v1/embeddings");
    assert.equal(response.status, 404);
    await response.body?.cancel();
    assert.equal(mock.remaining, 1);
    await (await post()).body?.cancel();
  });

  await t.step("requests are recorded with method, path, headers and parsed body", () => {
    const last = mock.requests.at(-1)!;
    assert.equal(last.method, "POST");
    assert.equal(last.path, "/v1/chat/completions");
    assert.equal(typeof last.headers["content-type"], "string");
    assert.deepEqual(last.body, { model: "m", messages: [] });
  });
});

Deno.test("mock_llm: close() cuts a slow reply short", async () => {
  const mock = startMockOpenAI();
  mock.enqueue({ type: "text", text: "late", delayMs: 60_000 });
  const pending = fetch(mock.baseUrl + "/chat/completions", { method: "POST", body: "{}" });
  while (mock.delayed === 0) await new Promise((resolve) => setTimeout(resolve, 5));
  await mock.close();
  // 503 is the answer of a delay cut short; the scripted reply would have been a 200.
  const response = await pending;
  assert.equal(response.status, 503);
  assert.equal(mock.delayed, 0);
  await response.body?.cancel();
});
