/**
 * One model reply asking for many tool calls does not take the sandbox pool from other executions (outside
 * break attempt brk38). A reply's calls run at most MAX_TOOL_CALLS_IN_FLIGHT at once; before, all of them went
 * to the pool at once, and since a pool serves one tool's calls oldest first, another execution's call of the
 * same tool waited behind every one of them. Real sandbox processes (ToolRunner), the `mock` model.
 */

import assert from "node:assert/strict";
import {
  MAX_TOOL_CALLS_IN_FLIGHT,
  MAX_TOOL_OUTPUT_BYTES_PER_CALL,
  runAgent,
} from "../../pkg/runtime/agent/agent_runner.ts";
import { type ToolResultRecord, TurnJournal } from "../../pkg/runtime/agent/turn_journal.ts";
import { ToolRunner } from "../../pkg/runtime/tool_runner.ts";
import { call, ToolDir } from "../runtime/_helpers.ts";
import { agentCall } from "./_agent_call.ts";

const FAN_OUT = 60;
const PROCESSES = 2;

Deno.test({
  name: "brk38: a reply with many tool calls leaves other executions' calls of the tool their turn",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const dir = new ToolDir();
    const runner = new ToolRunner({ maxProcesses: PROCESSES, reserveProcesses: 0 });
    try {
      const tool = dir.tool(
        "slow",
        `export default async () => { await new Promise((r) => setTimeout(r, 100)); return "ok"; };`,
      );
      let agentCallsEnded = 0;
      let endedBeforeOther: number | undefined;
      let other: Promise<unknown> | undefined;
      const model = {
        provider: "mock" as const,
        model: "scripted",
        mock: {
          replies: {
            default: [
              { tool_calls: Array.from({ length: FAN_OUT }, (_, i) => ({ tool: "slow", input: { i } })) },
              { text: "done" },
            ],
          },
        },
      };
      const result = await runAgent(agentCall(model, {
        tools: [{ id: "slow", description: "waits a little", inputSchema: { type: "object" } }],
        callTool: async (_toolId, input) => {
          const outcome = await runner.run(call(tool, input, { timeoutMs: 120_000 }));
          agentCallsEnded++;
          // Another execution calls the same tool once the agent's first call is done: the others it asked for
          // are in the pool's queue by then.
          other ??= runner.run(call(tool, {}, { timeoutMs: 120_000 })).then((outcome) => {
            endedBeforeOther = agentCallsEnded;
            return outcome;
          });
          if (!outcome.ok) throw outcome.failure;
          return outcome.output;
        },
      }));
      assert.ok(result.ok, JSON.stringify(result));
      const otherOutcome = await other;
      assert.ok((otherOutcome as { ok: boolean }).ok, JSON.stringify(otherOutcome));
      // At most the calls in flight when it arrived were served before it. Before: all 60 (58-60).
      assert.ok(
        endedBeforeOther! <= MAX_TOOL_CALLS_IN_FLIGHT + PROCESSES,
        `${endedBeforeOther} of the agent's ${FAN_OUT} calls ended before the other execution's call`,
      );
    } finally {
      await runner.close();
      dir.cleanup();
    }
  },
});

Deno.test("brk38: the calls of a reply not started when the agent call is aborted do not start", async () => {
  const FAN = 40;
  const aborter = new AbortController();
  let started = 0;
  const model = {
    provider: "mock" as const,
    model: "scripted",
    mock: {
      replies: {
        default: [
          { tool_calls: Array.from({ length: FAN }, (_, i) => ({ tool: "slow", input: { i } })) },
          { text: "done" },
        ],
      },
    },
  };
  const result = await runAgent(agentCall(model, {
    tools: [{ id: "slow", description: "waits a little", inputSchema: { type: "object" } }],
    signal: aborter.signal,
    callTool: async () => {
      started++;
      // The agent call's time runs out during its first call.
      aborter.abort(new DOMException("the task's time limit", "TimeoutError"));
      await new Promise((resolve) => setTimeout(resolve, 10));
      return "ok";
    },
  }));
  assert.equal(result.ok, false);
  assert.equal(!result.ok && result.failure.code, "agent_timeout");
  // Before: all 40 ran after the abort.
  assert.ok(started <= MAX_TOOL_CALLS_IN_FLIGHT, `${started} calls started`);
});

Deno.test("brk38: an agent call's tool outputs past their bound go to the model as errors", async () => {
  // Before: every output was kept (150 of 4 MiB: ~950 MiB in the runtime, then "Invalid string length").
  const FAN = 12;
  const OUTPUT = 4 * 1024 * 1024 - 64;
  const results: ToolResultRecord[] = [];
  class Watched extends TurnJournal {
    override async toolResult(...args: Parameters<TurnJournal["toolResult"]>) {
      const result = await super.toolResult(...args);
      results.push(result);
      return result;
    }
  }
  const model = {
    provider: "mock" as const,
    model: "scripted",
    mock: {
      replies: {
        default: [
          { tool_calls: Array.from({ length: FAN }, (_, i) => ({ tool: "big", input: { i } })) },
          { text: "done" },
        ],
      },
    },
  };
  const result = await runAgent(agentCall(model, {
    tools: [{ id: "big", description: "a large page", inputSchema: { type: "object" } }],
    journal: new Watched(),
    callTool: (_toolId, input) => Promise.resolve(String((input as { i: number }).i).padEnd(OUTPUT, "x")),
  }));
  assert.ok(result.ok, JSON.stringify(result).slice(0, 300));
  const kept = results.filter((r) => r.output !== undefined).length;
  assert.equal(kept, Math.floor(MAX_TOOL_OUTPUT_BYTES_PER_CALL / OUTPUT));
  const refused = results.filter((r) => r.errorCode === "tool_output_too_large");
  assert.equal(refused.length, FAN - kept);
  assert.match(refused[0].error!, /this agent call's tool outputs would be over 16777216 bytes/);
});
