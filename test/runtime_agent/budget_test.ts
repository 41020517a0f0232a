/**
 * Budgets on the mock provider's scripted usage: the reply that crosses a limit ends the call with
 * `agent_budget_exceeded` (not retryable) and the usage so far, before any tool it asked for runs; a model
 * with a price reports the cost; `max_cost` without a price is a config error.
 */

import assert from "node:assert/strict";
import { type ModelSpec, runAgent } from "../../pkg/runtime/agent/mod.ts";
import { agentCall, fakeSandbox, WEATHER_TOOL } from "./_agent_call.ts";

const PRICE = { input_per_million: 2, output_per_million: 10 };

/** Three tool-calling replies of 100 in / 10 out tokens each, then the answer. */
function scripted(price?: ModelSpec["price"]): ModelSpec {
  const call = { tool_calls: [{ tool: "weather_tool", input: { city: "Lisbon" } }], usage: USAGE };
  return {
    provider: "mock",
    model: "scripted",
    price,
    mock: { replies: { advise: [call, call, call, { text: "done", usage: USAGE }] } },
  };
}
const USAGE = { input_tokens: 100, output_tokens: 10 };

Deno.test("agent budgets", async (t) => {
  await t.step("within every limit the call succeeds and reports its cost", async () => {
    const result = await runAgent(agentCall(scripted(PRICE), {
      tools: [WEATHER_TOOL],
      callTool: fakeSandbox({ weather_tool: () => ({ tempC: 14 }) }).callTool,
      budget: { max_input_tokens: 400, max_output_tokens: 40, max_total_tokens: 440, max_cost: 0.0012 },
    }));
    assert.deepEqual(result, {
      ok: true,
      output: { text: "done" },
      // 400 × 2 / 1e6 + 40 × 10 / 1e6
      usage: { inputTokens: 400, outputTokens: 40, totalTokens: 440, cost: 0.0012 },
      steps: 4,
    });
  });

  for (
    const [limit, budget, turns] of [
      ["max_total_tokens", { max_total_tokens: 250 }, 3],
      ["max_input_tokens", { max_input_tokens: 100 }, 2],
      ["max_output_tokens", { max_output_tokens: 25 }, 3],
      ["max_cost", { max_cost: 0.0005 }, 2],
    ] as const
  ) {
    await t.step(`crossing ${limit} ends the call after turn ${turns}; its tools do not run`, async () => {
      const sandbox = fakeSandbox({ weather_tool: () => ({ tempC: 14 }) });
      const result = await runAgent(agentCall(scripted(PRICE), {
        tools: [WEATHER_TOOL],
        callTool: sandbox.callTool,
        budget,
      }));
      assert.equal(result.ok, false);
      if (result.ok) return;
      assert.equal(result.failure.code, "agent_budget_exceeded");
      assert.equal(result.failure.retryable, false);
      assert.equal(result.failure.details?.limit, limit);
      assert.equal(result.usage.inputTokens, 100 * turns);
      assert.equal(result.usage.outputTokens, 10 * turns);
      assert.equal(sandbox.calls.length, turns - 1, "the crossing reply's tool did not run");
    });
  }

  await t.step("max_cost on a model without a price is agent_config_invalid before any request", async () => {
    const result = await runAgent(agentCall(scripted(), { budget: { max_cost: 1 } }));
    assert.equal(!result.ok && result.failure.code, "agent_config_invalid");
    assert.deepEqual(result.usage, { inputTokens: 0, outputTokens: 0, totalTokens: 0 });
  });
});
