/**
 * The loop's journal: every reply and tool result is recorded before the loop goes on, and a run given the
 * records of an earlier one replays them (no model request, no tool run) and goes on from the first
 * unrecorded turn, with the same idempotency keys.
 */

import assert from "node:assert/strict";
import { runAgent, ToolCallGivenUp } from "../../pkg/runtime/agent/mod.ts";
import {
  type ReplyRecord,
  type ToolResultRecord,
  TurnJournal,
} from "../../pkg/runtime/agent/turn_journal.ts";
import { startMockOpenAI } from "../support/mock_llm/mod.ts";
import { ADVICE_SCHEMA, agentCall, openAIModel, WEATHER_TOOL } from "./_agent_call.ts";

Deno.test("runAgent: turns are recorded, then replayed", async (t) => {
  await using mock = startMockOpenAI();
  const model = openAIModel(mock);
  const replies: ReplyRecord[] = [];
  const results: ToolResultRecord[] = [];
  const keys: string[] = [];
  const call = (journal: TurnJournal) =>
    agentCall(model, {
      tools: [WEATHER_TOOL],
      outputSchema: ADVICE_SCHEMA,
      taskExecId: "task-1",
      journal,
      callTool: (_id, input, ref) => {
        keys.push(ref.key);
        return Promise.resolve({ tempC: (input as { city: string }).city.length });
      },
    });

  await t.step(
    "each reply is recorded before its tools run, each result before the next request",
    async () => {
      const order: string[] = [];
      const journal = new TurnJournal({}, {
        reply: (record) => {
          order.push(`reply ${record.turn}`);
          replies.push(record);
          return Promise.resolve();
        },
        toolResult: (_call, record) => {
          order.push(`tool ${record.turn}:${record.index}`);
          results.push(record);
          return Promise.resolve();
        },
      });
      mock.enqueue(
        { type: "tool_calls", calls: [{ name: "weather_tool", arguments: { city: "Lisbon" } }] },
        { type: "tool_calls", calls: [{ name: "weather_tool", arguments: { city: "Porto" } }] },
        { type: "json", value: { advice: "coat" } },
      );
      const result = await runAgent(call(journal));
      assert.equal(result.ok, true);
      assert.deepEqual(order, ["reply 1", "tool 1:0", "reply 2", "tool 2:0", "reply 3"]);
      assert.deepEqual(keys, ["task-1:1:0", "task-1:2:0"]);
      assert.deepEqual(replies[0].toolCalls.map((c) => c.key), ["task-1:1:0"]);
    },
  );

  await t.step("a re-run replays what was recorded and goes on from the first unrecorded turn", async () => {
    keys.length = 0;
    const before = mock.requests.length;
    // The crash came after turn 2's reply was stored, before its tool result was.
    const recorded = JSON.parse(
      JSON.stringify({ replies: replies.slice(0, 2), toolResults: results.slice(0, 1) }),
    );
    mock.enqueue({ type: "json", value: { advice: "umbrella" } });
    const result = await runAgent(call(new TurnJournal(recorded)));
    assert.deepEqual(result, {
      ok: true,
      output: { advice: "umbrella" },
      usage: { inputTokens: 30, outputTokens: 15, totalTokens: 45 },
      steps: 3,
    });
    assert.deepEqual(keys, ["task-1:2:0"], "only the unrecorded tool call runs, with its key");
    assert.equal(mock.requests.length - before, 1, "only turn 3 is asked");
    const messages = mock.requests.at(-1)!.body.messages as { role: string; content: string }[];
    assert.deepEqual(messages.filter((m) => m.role === "tool").map((m) => JSON.parse(m.content)), [
      { tempC: 6 },
      { tempC: 5 },
    ]);
  });

  await t.step("a fully recorded loop asks nothing and runs nothing", async () => {
    keys.length = 0;
    const before = mock.requests.length;
    const recorded = JSON.parse(JSON.stringify({ replies, toolResults: results }));
    const result = await runAgent(call(new TurnJournal(recorded)));
    assert.deepEqual(result.ok && result.output, { advice: "coat" });
    assert.deepEqual(keys, []);
    assert.equal(mock.requests.length, before);
  });
});

Deno.test("runAgent: a tool call the runtime gave up (it is stopping) is not recorded, and no turn follows", async () => {
  await using mock = startMockOpenAI();
  const results: ToolResultRecord[] = [];
  const journal = new TurnJournal({}, {
    reply: () => Promise.resolve(),
    toolResult: (_call, record) => {
      results.push(record);
      return Promise.resolve();
    },
  });
  mock.enqueue(
    { type: "tool_calls", calls: [{ name: "weather_tool", arguments: { city: "Lisbon" } }] },
    { type: "json", value: { advice: "coat" } },
  );
  const result = await runAgent(agentCall(openAIModel(mock), {
    tools: [WEATHER_TOOL],
    outputSchema: ADVICE_SCHEMA,
    taskExecId: "task-2",
    journal,
    callTool: () => Promise.reject(new ToolCallGivenUp("the runtime stopped")),
  }));
  // Before the fix (outside review A2) the give-up was recorded as the tool's error result and turn 2 was asked:
  // the re-run after the restart then showed the model a failure that never happened and never ran the tool.
  assert.equal(result.ok, false);
  assert.deepEqual(results, []);
  assert.equal(mock.requests.length, 1);
});
