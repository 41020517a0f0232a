/**
 * Budgets end to end (engine, state manager, sandboxed runtime, HTTP API) on the mock provider's scripted
 * usage: a task over its agent's budget fails `agent_budget_exceeded` at once, though it has `retry`, with its
 * usage so far in its state; usage and cost add up per execution in `GET /api/executions/{id}`.
 */
import assert from "node:assert/strict";
import { startRuntime } from "../../pkg/runtime/service.ts";
import { createApp } from "../../server/mod.ts";
import { startEngineHarness } from "../support/engine.ts";

function sharedBudget(id: string, maxTotalTokens: number): string {
  return `id: ${id}
config:
  budget: { max_total_tokens: ${maxTotalTokens} }
tools:
  - id: probe
    execute: ./probe.ts
agents:
  - id: writer
    config: { $model: priced }
    instructions: Be brief.
    actions: [{ id: summarize, prompt: summarize }]
  - id: digger
    config: { $model: priced }
    instructions: Dig.
    tools: [probe]
    actions: [{ id: dig, prompt: dig }]
tasks:
  - id: summary
    use: agent(id=writer)
    action: summarize
  - id: dig
    use: agent(id=digger)
    action: dig
`;
}

const PROJECT = {
  "compozy.yaml": `name: budgets
workflows:
  - { source: ./wf.yaml }
  - { source: ./shared-1500.yaml }
  - { source: ./shared-1100.yaml }
  - { source: ./costs.yaml }
models:
  - id: priced
    provider: mock
    model: scripted
    price: { input_per_million: 2, output_per_million: 10 }
    mock:
      replies:
        summarize: [{ text: "short", usage: { input_tokens: 1000, output_tokens: 100 } }]
        dig:
          - { tool_calls: [{ tool: probe }], usage: { input_tokens: 400, output_tokens: 40 } }
          - { tool_calls: [{ tool: probe }], usage: { input_tokens: 400, output_tokens: 40 } }
          - { text: "never reached", usage: { input_tokens: 400, output_tokens: 40 } }
`,
  "wf.yaml": `id: spend
tools:
  - id: probe
    execute: ./probe.ts
agents:
  - id: writer
    config: { $model: priced }
    instructions: Be brief.
    actions: [{ id: summarize, prompt: summarize }]
  - id: digger
    config: { $model: priced }
    instructions: Dig.
    tools: [probe]
    budget: { max_total_tokens: 800 }
    actions: [{ id: dig, prompt: dig }]
tasks:
  - id: summary
    use: agent(id=writer)
    action: summarize
  - id: dig
    use: agent(id=digger)
    action: dig
    retry: { max_attempts: 3, backoff: { initial: 100ms, max: 100ms, factor: 1 } }
`,
  "probe.ts": "export default () => ({ found: 1 });\n",
  // Two agent tasks share the workflow's budget: the second gets what the first left.
  "shared-1500.yaml": sharedBudget("shared-1500", 1500),
  "shared-1100.yaml": sharedBudget("shared-1100", 1100),
  // A cost budget over a parallel's two agent tasks and one after it (each reply costs 0.003).
  "costs.yaml": `id: costs
config:
  budget: { max_cost: 0.005 }
agents:
  - id: writer
    config: { $model: priced }
    instructions: Be brief.
    actions: [{ id: summarize, prompt: summarize }]
tasks:
  - id: both
    type: parallel
    tasks:
      - { id: left, use: agent(id=writer), action: summarize }
      - { id: right, use: agent(id=writer), action: summarize }
  - id: after
    use: agent(id=writer)
    action: summarize
`,
};

async function withStack(fn: (h: Awaited<ReturnType<typeof startEngineHarness>>) => Promise<void>) {
  const h = await startEngineHarness(PROJECT);
  const runtime = startRuntime({ nc: h.nc, bus: h.bus });
  try {
    await fn(h);
  } finally {
    await runtime.stop();
    await h.close();
  }
}

Deno.test({
  name: "workflow budget: agent tasks share it; the next one gets what is left, or does not start",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: () =>
    withStack(async (h) => {
      const over = await h.engine.client.trigger("shared-1500", {});
      const state = await h.engine.client.waitForEnd(over.execId, 30_000);
      assert.equal(state.status, "FAILED");
      const dig = state.tasks[1];
      assert.equal(dig.error?.code, "agent_budget_exceeded");
      assert.match(dig.error?.message ?? "", /workflow's budget left this task max_total_tokens 400/);
      assert.deepEqual(dig.usage, { input_tokens: 400, output_tokens: 40, total_tokens: 440, cost: 0.0012 });
      assert.equal(state.usage?.total_tokens, 1540);

      const spent = await h.engine.client.trigger("shared-1100", {});
      const ended = await h.engine.client.waitForEnd(spent.execId, 30_000);
      assert.equal(ended.tasks[0].status, "SUCCESS", "using exactly the limit is not over it");
      assert.equal(ended.tasks[1].error?.code, "agent_budget_exceeded");
      assert.match(
        ended.tasks[1].error?.message ?? "",
        /not started: the workflow's budget max_total_tokens 1100/,
      );
      assert.equal(ended.tasks[1].usage, undefined);
      assert.equal(ended.usage?.total_tokens, 1100);
    }),
});

Deno.test({
  name: "agent budgets: exceeded ends the task, usage and cost add up per execution in the API",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: () =>
    withStack(async (h) => {
      const { execId } = await h.engine.client.trigger("spend", {});
      await h.engine.client.waitForEnd(execId, 30_000);
      const app = createApp({
        client: h.engine.client,
        project: h.project,
        version: { version: "test" },
        health: { check: () => Promise.reject(new Error("not asked")) },
      });
      const res = await app.request(`/api/executions/${execId}`);
      assert.equal(res.status, 200);
      const state = await res.json();
      assert.equal(state.status, "FAILED");
      const [summary, dig] = state.tasks;
      assert.deepEqual(summary.usage, {
        input_tokens: 1000,
        output_tokens: 100,
        total_tokens: 1100,
        cost: 0.003,
      });
      assert.equal(dig.status, "FAILED");
      assert.equal(dig.error.code, "agent_budget_exceeded");
      assert.equal(dig.attempts, 1, "not retried");
      assert.deepEqual(dig.usage, { input_tokens: 800, output_tokens: 80, total_tokens: 880, cost: 0.0024 });
      assert.deepEqual(state.usage, {
        input_tokens: 1800,
        output_tokens: 180,
        total_tokens: 1980,
        cost: 0.0054,
      });
    }),
});

Deno.test({
  name: "workflow max_cost: the cost of parallel agent tasks adds up in the API and stops the next task",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: () =>
    withStack(async (h) => {
      const { execId } = await h.engine.client.trigger("costs", {});
      await h.engine.client.waitForEnd(execId, 30_000);
      const app = createApp({
        client: h.engine.client,
        project: h.project,
        version: { version: "test" },
        health: { check: () => Promise.reject(new Error("not asked")) },
      });
      const res = await app.request(`/api/executions/${execId}`);
      assert.equal(res.status, 200);
      const state = await res.json();
      const byId = (id: string) => state.tasks.find((task: { task_id: string }) => task.task_id === id);
      const oneReply = { input_tokens: 1000, output_tokens: 100, total_tokens: 1100, cost: 0.003 };
      // Each was given the whole remainder (0.005) at its start, and spent 0.003 of it: together they pass
      // the limit, as documented for tasks that run at the same time.
      assert.equal(byId("both/left").status, "SUCCESS");
      assert.deepEqual(byId("both/left").usage, oneReply);
      assert.equal(byId("both/right").status, "SUCCESS");
      assert.deepEqual(byId("both/right").usage, oneReply);
      const after = byId("after");
      assert.equal(after.status, "FAILED");
      assert.equal(after.error.code, "agent_budget_exceeded");
      assert.match(after.error.message, /not started: the workflow's budget max_cost 0.005 is spent/);
      assert.equal(after.usage, undefined, "no model request");
      assert.equal(state.status, "FAILED");
      assert.deepEqual(state.usage, {
        input_tokens: 2000,
        output_tokens: 200,
        total_tokens: 2200,
        cost: 0.006,
      });
    }),
});
