/**
 * What an agent step costs on top of the model: `runAgent` against the loopback OpenAI mock (which answers
 * at once), next to a bare `fetch` of the same endpoint. The difference is our overhead plus the AI SDK's
 * (request building, response parsing, validation); a real model's latency comes on top of all of it.
 *
 * Run: `deno run -A bench/agent_bench.ts`
 *
 * @module
 */

import { runAgent } from "../pkg/runtime/agent/mod.ts";
import type { AgentCall } from "../pkg/runtime/agent/mod.ts";
import { type MockLlmServer, type MockReply, startMockOpenAI } from "../test/support/mock_llm/mod.ts";

const CALLS = 200;
const WARMUP = 20;

interface Scenario {
  name: string;
  /** Replies one run consumes. */
  replies: MockReply[];
  run(mock: MockLlmServer): Promise<void>;
}

/** p50 and p99 of `CALLS` sequential runs of each scenario, in milliseconds. */
export async function benchAgent(): Promise<Array<Record<string, string | number>>> {
  await using mock = startMockOpenAI();
  const rows: Array<Record<string, string | number>> = [];
  for (const scenario of scenarios()) {
    const samples = await measure(mock, scenario);
    // Column names as in the other benchmarks, so `deno task bench` can print one table style.
    rows.push({
      benchmark: scenario.name,
      calls: CALLS,
      "p50 ms": round(percentile(samples, 50)),
      "p99 ms": round(percentile(samples, 99)),
    });
  }
  return rows;
}

function scenarios(): Scenario[] {
  const text: MockReply = { type: "text", text: "Wear a light jacket." };
  const call = (mock: MockLlmServer, overrides: Partial<AgentCall> = {}): AgentCall => ({
    agentId: "bench",
    actionId: "step",
    model: { provider: "openai", model: "gpt-4o-mini", api_key: "bench", base_url: mock.baseUrl },
    instructions: "You are a concise weather assistant.",
    prompt: "Advise about clothes in Lisbon",
    tools: [],
    maxSteps: 10,
    callTool: () => Promise.resolve({ tempC: 18 }),
    ...overrides,
  });
  const expectOk = async (result: ReturnType<typeof runAgent>) => {
    const settled = await result;
    if (!settled.ok) throw new Error(`bench call failed: ${settled.failure.message}`);
  };
  return [
    {
      name: "baseline: bare fetch of the mock",
      replies: [text],
      run: async (mock) => {
        const response = await fetch(`${mock.baseUrl}/chat/completions`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ model: "gpt-4o-mini", messages: [{ role: "user", content: "hi" }] }),
        });
        await response.json();
      },
    },
    {
      name: "runAgent: one step, text reply",
      replies: [text],
      run: (mock) => expectOk(runAgent(call(mock))),
    },
    {
      name: "runAgent: one step, structured output",
      replies: [{ type: "json", value: { advice: "Coat" } }],
      run: (mock) =>
        expectOk(runAgent(call(mock, {
          outputSchema: { type: "object", properties: { advice: { type: "string" } }, required: ["advice"] },
        }))),
    },
    {
      name: "runAgent: tool call + answer (2 requests)",
      replies: [
        { type: "tool_calls", calls: [{ name: "weather_tool", arguments: { city: "Lisbon" } }] },
        text,
      ],
      run: (mock) => expectOk(runAgent(call(mock, { tools: [{ id: "weather_tool" }] }))),
    },
  ];
}

async function measure(mock: MockLlmServer, scenario: Scenario): Promise<number[]> {
  const samples: number[] = [];
  for (let i = 0; i < WARMUP + CALLS; i++) {
    mock.enqueue(...scenario.replies);
    const started = performance.now();
    await scenario.run(mock);
    if (i >= WARMUP) samples.push(performance.now() - started);
  }
  // The mock keeps every request for assertions; a bench has no use for them.
  mock.requests.length = 0;
  return samples;
}

/** Nearest-rank percentile. */
function percentile(samples: number[], p: number): number {
  const sorted = samples.toSorted((a, b) => a - b);
  return sorted[Math.max(0, Math.ceil((p / 100) * sorted.length) - 1)];
}

function round(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}

if (import.meta.main) {
  console.table(await benchAgent());
}
