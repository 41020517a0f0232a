/**
 * Provider errors become typed failures the engine's retry policy can act on, and the AI SDK never retries
 * behind its back: every error below costs exactly one request.
 */

import assert from "node:assert/strict";
import { type AgentFailure, type ModelSpec, runAgent } from "../../pkg/runtime/agent/mod.ts";
import { startMockAnthropic, startMockOpenAI } from "../support/mock_llm/mod.ts";
import { agentCall, fakeSandbox, openAIModel, WEATHER_TOOL } from "./_agent_call.ts";

Deno.test("runAgent: HTTP errors map to retryable or non-retryable failures", async (t) => {
  await using mock = startMockOpenAI();
  const model = openAIModel(mock);

  const cases = [
    { status: 401, code: "agent_provider_auth", retryable: false },
    { status: 403, code: "agent_provider_auth", retryable: false },
    { status: 400, code: "agent_provider_error", retryable: false },
    { status: 404, code: "agent_provider_error", retryable: false },
    { status: 500, code: "agent_provider_error", retryable: true },
    { status: 503, code: "agent_provider_error", retryable: true },
  ] as const;
  for (const { status, code, retryable } of cases) {
    await t.step(`${status} is ${code}, retryable: ${retryable}, after one request`, async () => {
      mock.enqueue({ type: "error", status, message: `mock says ${status}` });
      const before = mock.requests.length;
      const result = await runAgent(agentCall(model));
      assert.equal(mock.requests.length, before + 1);
      assert.equal(result.ok, false);
      const { failure } = result;
      assert.equal(failure.code, code);
      assert.equal(failure.retryable, retryable);
      assert.equal(failure.retryAfterMs, undefined);
      assert.equal(failure.details?.status, status);
      assert.match(
        failure.message,
        new RegExp(`agent 'forecaster' action 'advise': HTTP ${status} from .*mock says`),
      );
      assert.ok(failure.cause instanceof Error, "the provider error is kept as the cause");
    });
  }

  await t.step("a provider's error echoing the API key is reported without it (brk38)", async () => {
    // Before: the key was in the failure's message and its details' body, and so in the task's history.
    const key = "sk-brk38-0123456789abcdef";
    mock.enqueue({ type: "error", status: 401, message: `invalid api key ${key}` });
    const result = await runAgent(agentCall(openAIModel(mock, { api_key: key })));
    assert.equal(result.ok, false);
    const { failure } = result;
    assert.equal(failure.code, "agent_provider_auth");
    const reported = JSON.stringify({ message: failure.message, details: failure.details });
    assert.ok(!reported.includes(key), reported);
    assert.match(failure.message, /invalid api key \[redacted\]/);
    assert.equal(failure.cause, undefined, "the provider's error, which holds the key, is not kept");
  });

  await t.step("a key in the model's base_url is not in its failure (brk38)", async () => {
    // Before: the failure quoted the request's URL, key and all, in its message and details.
    const key = "brk38-url-key-0123456789";
    // The SDK appends its path to the query here, so the mock answers 404 for a path it does not serve.
    const result = await runAgent(agentCall(openAIModel(mock, { base_url: `${mock.baseUrl}?key=${key}` })));
    assert.equal(result.ok, false);
    const reported = JSON.stringify({ message: result.failure.message, details: result.failure.details });
    assert.ok(!reported.includes(key), reported);
    assert.match(reported, /key=\[redacted\]/);
  });

  await t.step("429 is agent_rate_limited with retry-after in seconds", async () => {
    mock.enqueue({ type: "error", status: 429, headers: { "retry-after": "7" } });
    const result = await runAgent(agentCall(model));
    assert.equal(result.ok, false);
    assert.equal(result.failure.code, "agent_rate_limited");
    assert.equal(result.failure.retryable, true, result.failure.message);
    assert.equal(result.failure.retryAfterMs, 7_000);
  });

  await t.step("429 with retry-after as an HTTP date", async () => {
    const sent = Date.now();
    const inAMinute = new Date(sent + 60_000).toUTCString();
    mock.enqueue({ type: "error", status: 429, headers: { "retry-after": inAMinute } });
    const result = await runAgent(agentCall(model));
    assert.equal(result.ok, false);
    assert.equal(result.failure.code, "agent_rate_limited");
    const retryAfterMs = result.failure.retryAfterMs!;
    // The date less the time of parsing it: the call's own duration, and one second (HTTP dates' resolution).
    const spent = Date.now() - sent;
    assert.ok(retryAfterMs <= 60_000 && retryAfterMs >= 59_000 - spent, `retryAfterMs = ${retryAfterMs}`);
  });

  await t.step("429 prefers OpenAI's retry-after-ms", async () => {
    mock.enqueue({ type: "error", status: 429, headers: { "retry-after-ms": "1500", "retry-after": "2" } });
    const result = await runAgent(agentCall(model));
    assert.equal(result.ok, false);
    assert.equal(result.failure.retryAfterMs, 1_500);
  });

  await t.step("429 without a usable header has no retryAfterMs", async () => {
    mock.enqueue({ type: "error", status: 429 });
    const result = await runAgent(agentCall(model));
    assert.equal(result.ok, false);
    assert.equal(result.failure.code, "agent_rate_limited");
    assert.equal(result.failure.retryAfterMs, undefined);
  });

  await t.step("an error after tool steps keeps the usage spent so far", async () => {
    const sandbox = fakeSandbox({ weather_tool: () => ({ tempC: 9 }) });
    mock.enqueue(
      { type: "tool_calls", calls: [{ name: "weather_tool", arguments: { city: "Oslo" } }] },
      { type: "error", status: 502 },
    );
    const result = await runAgent(agentCall(model, { tools: [WEATHER_TOOL], callTool: sandbox.callTool }));
    assert.equal(result.ok, false);
    assert.equal(result.failure.code, "agent_provider_error");
    assert.deepEqual(result.usage, { inputTokens: 10, outputTokens: 5, totalTokens: 15 });
  });

  assert.equal(mock.remaining, 0);
});

Deno.test("runAgent: time-outs and aborts", async (t) => {
  await using mock = startMockOpenAI();

  await t.step("a reply slower than timeout_ms is agent_timeout, retryable", async () => {
    mock.enqueue({ type: "text", text: "too late", delayMs: 60_000 });
    const result = await runAgent(agentCall(openAIModel(mock, { timeout_ms: 100 })));
    assert.equal(result.ok, false);
    assert.equal(result.failure.code, "agent_timeout");
    assert.equal(result.failure.retryable, true, result.failure.message);
    assert.match(result.failure.message, /did not answer within 100 ms/);
    assert.deepEqual(result.failure.details, { timeoutMs: 100 });
    assert.equal(mock.delayed, 1, "gave up while the reply was still on its way");
  });

  await t.step("timeout_ms bounds each request, not the call", async () => {
    const sandbox = fakeSandbox({ weather_tool: () => ({ tempC: 9 }) });
    mock.enqueue(
      { type: "tool_calls", calls: [{ name: "weather_tool", arguments: { city: "Oslo" } }], delayMs: 1_000 },
      { type: "text", text: "Cold.", delayMs: 1_000 },
    );
    // Together the two requests outlast timeout_ms; each alone is well within it, even on a loaded machine.
    const result = await runAgent(
      agentCall(openAIModel(mock, { timeout_ms: 1_600 }), {
        tools: [WEATHER_TOOL],
        callTool: sandbox.callTool,
      }),
    );
    assert.ok(result.ok, JSON.stringify(result));
  });

  await t.step("the caller's time-out (a TimeoutError reason) is a retryable agent_timeout", async () => {
    mock.enqueue({ type: "text", text: "too late", delayMs: 5_000 });
    const result = await runAgent(agentCall(openAIModel(mock), { signal: AbortSignal.timeout(100) }));
    assert.equal(result.ok, false);
    assert.equal(result.failure.code, "agent_timeout");
    assert.equal(result.failure.retryable, true, result.failure.message);
    assert.match(result.failure.message, /aborted by the caller/);
  });

  await t.step("a cancellation is an agent_canceled that is not retried", async () => {
    mock.enqueue({ type: "text", text: "too late", delayMs: 5_000 });
    const controller = new AbortController();
    setTimeout(() => controller.abort(new Error("workflow canceled")), 50);
    const result = await runAgent(agentCall(openAIModel(mock), { signal: controller.signal }));
    assert.equal(result.ok, false);
    assert.equal(result.failure.code, "agent_canceled");
    assert.equal(result.failure.retryable, false);
    assert.match(result.failure.message, /workflow canceled/);
  });

  await t.step("an already aborted signal sends nothing", async () => {
    const before = mock.requests.length;
    const result = await runAgent(
      agentCall(openAIModel(mock), { signal: AbortSignal.abort(new Error("stop")) }),
    );
    assert.equal(result.ok, false);
    assert.equal(result.failure.code, "agent_canceled");
    assert.equal(mock.requests.length, before);
  });
});

Deno.test("runAgent: an unreachable provider is a retryable agent_provider_error", async () => {
  const closed = startMockOpenAI();
  const baseUrl = closed.baseUrl;
  await closed.close();
  const result = await runAgent(agentCall(openAIModel(closed, { base_url: baseUrl })));
  assert.equal(result.ok, false);
  assert.equal(result.failure.code, "agent_provider_error");
  assert.equal(result.failure.retryable, true, result.failure.message);
  assert.match(result.failure.message, /Cannot connect/);
});

Deno.test("runAgent: a reply stream that breaks midway is a retryable failure, after the deltas it sent", async () => {
  await using mock = startMockOpenAI();
  mock.enqueue({ type: "text", text: "one two three four five", breakAfterChunks: 3 });
  const deltas: string[] = [];
  const result = await runAgent({
    ...agentCall(openAIModel(mock)),
    onDelta: ({ text }) => void deltas.push(text),
  });
  assert.equal(result.ok, false);
  if (result.ok) return;
  assert.equal(result.failure.code, "agent_provider_error", result.failure.message);
  assert.equal(result.failure.retryable, true, result.failure.message);
  // Why it failed, not only the SDK's "Failed to process successful response" (outside review rev35).
  assert.match(result.failure.message, /Failed to process successful response: error reading a body/);
  // The role chunk, then "one " and "two ": the text seen before the break, never recorded as a reply.
  assert.equal(deltas.join(""), "one two ");
});

/**
 * Replies the SDK reads without an error but that are no answer: each is a named, retryable failure before
 * the turn is recorded (a retry asks again), never a success with an empty or cut-short text.
 */
Deno.test("runAgent: garbage, a cut-short stream or an empty reply is a named failure, never an answer", async (t) => {
  await using openai = startMockOpenAI();
  await using anthropic = startMockAnthropic();
  const models = {
    openai: openAIModel(openai),
    anthropic: {
      provider: "anthropic",
      model: "claude-sonnet-4-5",
      api_key: "k",
      base_url: anthropic.baseUrl,
    },
  } as const;
  const failureOf = async (model: ModelSpec) => {
    const result = await runAgent(agentCall(model));
    assert.equal(result.ok, false, `expected a failure, got ${JSON.stringify(result)}`);
    return (result as { failure: AgentFailure }).failure;
  };

  await t.step("a 200 whose body is an HTML page (a proxy's), not a stream", async () => {
    openai.enqueue({
      type: "raw",
      chunks: ["<html><body>502 Bad Gateway</body></html>"],
      contentType: "text/html",
    });
    const failure = await failureOf(models.openai);
    assert.equal(failure.code, "agent_provider_error", failure.message);
    assert.equal(failure.retryable, true);
    assert.match(
      failure.message,
      /the reply ended before the model finished it \(finish reason: interrupted\)/,
    );
  });

  await t.step(
    "a stream that stops cleanly before its finish: the text so far is not an answer",
    async () => {
      const chunk = {
        id: "x",
        object: "chat.completion.chunk",
        choices: [{ index: 0, delta: { content: "Take a" } }],
      };
      openai.enqueue({ type: "raw", chunks: [`data: ${JSON.stringify(chunk)}\n\n`] });
      const failure = await failureOf(models.openai);
      assert.equal(failure.code, "agent_provider_error", failure.message);
      assert.match(failure.message, /ended before the model finished it/);
      const start = {
        type: "message_start",
        message: { id: "m", model: "claude", usage: { input_tokens: 3 } },
      };
      const delta = { type: "content_block_delta", index: 0, delta: { type: "text_delta", text: "Take a" } };
      anthropic.enqueue({
        type: "raw",
        chunks: [
          `event: message_start\ndata: ${JSON.stringify(start)}\n\n`,
          `event: content_block_start\ndata: ${
            JSON.stringify({
              type: "content_block_start",
              index: 0,
              content_block: { type: "text", text: "" },
            })
          }\n\n`,
          `event: content_block_delta\ndata: ${JSON.stringify(delta)}\n\n`,
        ],
      });
      const cut = await failureOf(models.anthropic);
      assert.equal(cut.code, "agent_provider_error", cut.message);
      assert.match(cut.message, /ended before the model finished it/);
    },
  );

  await t.step("events that are not JSON", async () => {
    openai.enqueue({ type: "raw", chunks: ["data: {not json\n\n", "data: [DONE]\n\n"] });
    assert.equal((await failureOf(models.openai)).code, "agent_provider_error");
    anthropic.enqueue({ type: "raw", chunks: ["event: message_start\ndata: {garbage\n\n"] });
    assert.equal((await failureOf(models.anthropic)).code, "agent_provider_error");
  });

  for (const provider of ["openai", "anthropic"] as const) {
    await t.step(
      `${provider}: a finished reply with no text and no tool call is agent_empty_reply`,
      async () => {
        (provider === "openai" ? openai : anthropic).enqueue({
          type: "text",
          text: "",
          usage: { inputTokens: 12, outputTokens: 0 },
        });
        const result = await runAgent(agentCall(models[provider]));
        assert.equal(result.ok, false);
        if (result.ok) return;
        assert.equal(result.failure.code, "agent_empty_reply", result.failure.message);
        assert.equal(result.failure.retryable, true);
        assert.match(result.failure.message, /turn 1: the model's reply has no text and no tool call/);
        assert.equal(result.usage.inputTokens, 12, "the request's usage is kept");
      },
    );
  }
  assert.equal(openai.remaining + anthropic.remaining, 0);
});
