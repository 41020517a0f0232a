import assert from "node:assert/strict";
import { create } from "@bufbuild/protobuf";
import { TokenUsageSchema } from "../../../pkg/pb/mod.ts";
import { TaskFailure } from "../../failure.ts";
import { ExecutionUsage, remainingBudget } from "./workflow_budget.ts";

const usage = (input: number, output: number, cost?: number) =>
  create(TokenUsageSchema, {
    inputTokens: BigInt(input),
    outputTokens: BigInt(output),
    totalTokens: BigInt(input + output),
    cost,
  });

Deno.test("ExecutionUsage", async (t) => {
  await t.step("a task's latest report replaces its earlier one; others add up", () => {
    const spent = ExecutionUsage.fromReplay([
      { execId: "a", attempt: 1, status: "success", usage: usage(100, 10, 0.5) },
      { execId: "b", attempt: 1, status: "success" },
    ]);
    spent.report("c", usage(50, 5));
    spent.report("c", usage(80, 8));
    assert.deepEqual(spent.spentExcept("none"), { input: 180, output: 18, total: 198, cost: 0.5 });
    assert.deepEqual(spent.spentExcept("a"), { input: 80, output: 8, total: 88, cost: 0 });
  });
});

Deno.test("remainingBudget", async (t) => {
  const spent = { input: 300, output: 100, total: 400, cost: 0.25 };
  await t.step("leaves each limit less what was spent; cost only for a priced model", () => {
    const budget = { max_input_tokens: 1000, max_total_tokens: 2000, max_cost: 1 };
    assert.deepEqual(remainingBudget(budget, spent, true, "t"), {
      max_input_tokens: 700,
      max_total_tokens: 1600,
      max_cost: 0.75,
    });
    assert.deepEqual(remainingBudget(budget, spent, false, "t"), {
      max_input_tokens: 700,
      max_total_tokens: 1600,
    });
  });
  await t.step("a spent limit fails the task before it starts, not retryable", () => {
    assert.throws(
      () => remainingBudget({ max_output_tokens: 100 }, spent, false, "t"),
      (e: unknown) => e instanceof TaskFailure && e.code === "agent_budget_exceeded" && !e.retryable,
    );
  });
});
