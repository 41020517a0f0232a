import assert from "node:assert/strict";
import { AgentFailure } from "./agent_failure.ts";
import { summaryEstimate } from "./summary_request.ts";
import { TaskSpend } from "./task_spend.ts";

const usage = (inputTokens: number, outputTokens: number, cost?: number) => ({
  inputTokens,
  outputTokens,
  totalTokens: inputTokens + outputTokens,
  ...(cost === undefined ? {} : { cost }),
});

Deno.test("TaskSpend: a request is affordable while the loop's usage plus its estimate is within both budgets", () => {
  const spend = new TaskSpend(usage(100, 20), {
    budget: { max_total_tokens: 300 },
    workflowBudget: { max_output_tokens: 120 },
  }, "agent 'a' memory summary");
  assert.equal(spend.affords(usage(80, 100)), true, "exactly at both limits is within them");
  assert.equal(spend.affords(usage(81, 100)), false, "the agent's total");
  assert.equal(spend.affords(usage(0, 101)), false, "the workflow's output");
});

Deno.test("TaskSpend: a charge adds up; crossing a limit is agent_budget_exceeded with the usage so far", () => {
  const spend = new TaskSpend(
    usage(10, 5, 0.01),
    { workflowBudget: { max_cost: 0.02 } },
    "agent 'a' memory summary",
  );
  spend.charge(usage(5, 5, 0.005));
  assert.deepEqual(spend.usage, usage(15, 10, 0.015));
  assert.throws(
    () => spend.charge(usage(5, 5, 0.01)),
    (e: unknown) =>
      e instanceof AgentFailure && e.code === "agent_budget_exceeded" && !e.retryable &&
      /memory summary: the workflow's budget left this task max_cost 0.02/.test(e.message),
  );
  assert.deepEqual(spend.usage, usage(20, 15, 0.025), "what crossed the limit was spent and counts");
});

Deno.test("summaryEstimate: the prompt at 4 characters a token, max_tokens out, priced by the summarizer", () => {
  const estimate = summaryEstimate({
    model: { provider: "mock", model: "m", price: { input_per_million: 1, output_per_million: 2 } },
    maxTokens: 100,
    dropped: [{ role: "user", content: "x".repeat(4_000) }],
  });
  assert.ok(estimate.inputTokens > 1_000 && estimate.inputTokens < 1_100, JSON.stringify(estimate));
  assert.equal(estimate.outputTokens, 100);
  assert.equal(estimate.cost, (estimate.inputTokens * 1 + 100 * 2) / 1_000_000);
});
