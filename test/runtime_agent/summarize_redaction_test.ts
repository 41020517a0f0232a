/**
 * A memory summary's failed request, which agent_memory.ts logs, does not carry the summarizer's API key when
 * the provider's error echoes it (outside break attempt brk38; an agent call's own failure is masked the same
 * way, provider_failures_test.ts "brk38").
 */

import assert from "node:assert/strict";
import { AgentFailure } from "../../pkg/runtime/agent/mod.ts";
import { summarize } from "../../pkg/runtime/agent/summarize.ts";
import { startMockOpenAI } from "../support/mock_llm/mod.ts";
import { openAIModel } from "./_agent_call.ts";

Deno.test("brk38: a summary request's failure does not carry the API key the provider echoed", async () => {
  await using mock = startMockOpenAI();
  const key = "sk-brk38-summary-0123456789";
  mock.enqueue({ type: "error", status: 401, message: `invalid api key ${key}` });
  let failure: unknown;
  try {
    await summarize({
      model: openAIModel(mock, { api_key: key }),
      maxTokens: 200,
      dropped: [{ role: "user", content: "hello" }],
    });
  } catch (error) {
    failure = error;
  }
  assert.ok(failure instanceof AgentFailure, String(failure));
  assert.equal(failure.code, "agent_provider_auth");
  const reported = JSON.stringify({ message: failure.message, details: failure.details });
  assert.ok(!reported.includes(key), reported);
  assert.match(failure.message, /invalid api key \[redacted\]/);
});
