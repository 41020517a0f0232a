/**
 * Live deltas against loopback servers that stream as real providers do (text word by word, tool arguments in
 * pieces), for the OpenAI and Anthropic protocols: each reply reaches `onDelta` in several pieces, in order,
 * turn after turn, and the pieces of a turn join into exactly the text the loop recorded for it (the final
 * answer's text for the last turn); tool arguments streamed in pieces still make a whole call.
 */

import assert from "node:assert/strict";
import { type ModelSpec, runAgent } from "../../pkg/runtime/agent/mod.ts";
import { type ReplyRecord, TurnJournal } from "../../pkg/runtime/agent/turn_journal.ts";
import { type MockLlmServer, startMockAnthropic, startMockOpenAI } from "../support/mock_llm/mod.ts";
import { agentCall, fakeSandbox, openAIModel, WEATHER_TOOL } from "./_agent_call.ts";

const PROSE = "Let me look at the weather in Lisbon first";
const ANSWER = "Wear a light jacket and bring an umbrella, it will rain after noon.";

const servers: Array<[string, () => MockLlmServer, (mock: MockLlmServer) => ModelSpec]> = [
  ["OpenAI", startMockOpenAI, (mock) => openAIModel(mock)],
  ["Anthropic", startMockAnthropic, (mock) => ({
    provider: "anthropic",
    model: "claude-sonnet-4-5",
    api_key: "test-key",
    base_url: mock.baseUrl,
  })],
];

for (const [name, start, modelOf] of servers) {
  Deno.test(`runAgent streaming (${name}): deltas in order, joining into each recorded reply`, async () => {
    await using mock = start();
    mock.enqueue(
      {
        type: "tool_calls",
        text: PROSE,
        calls: [{ name: "weather_tool", arguments: { city: "Lisbon", units: "metric", hours: 12 } }],
      },
      { type: "text", text: ANSWER },
    );
    const deltas: { turn: number; text: string }[] = [];
    const replies: ReplyRecord[] = [];
    const sandbox = fakeSandbox({ weather_tool: () => ({ tempC: 14, rain: true }) });
    const journal = new TurnJournal({}, {
      reply: (record) => {
        replies.push(record);
        return Promise.resolve();
      },
      toolResult: () => Promise.resolve(),
    });

    const result = await runAgent(agentCall(modelOf(mock), {
      tools: [WEATHER_TOOL],
      callTool: sandbox.callTool,
      journal,
      onDelta: (delta) => void deltas.push(delta),
    }));

    assert.deepEqual(result.ok && result.output, { text: ANSWER });
    assert.deepEqual(sandbox.calls, [{
      toolId: "weather_tool",
      input: { city: "Lisbon", units: "metric", hours: 12 },
    }], "arguments streamed in pieces make one whole call");
    const turns = deltas.map((delta) => delta.turn);
    assert.deepEqual(turns, [...turns].sort((a, b) => a - b), "turn 1's pieces all come before turn 2's");
    assert.deepEqual(replies.map((reply) => reply.text), [PROSE, ANSWER]);
    for (const reply of replies) {
      const pieces = deltas.filter((delta) => delta.turn === reply.turn).map((delta) => delta.text);
      assert.ok(pieces.length > 3, `turn ${reply.turn} came in pieces: ${JSON.stringify(pieces)}`);
      assert.equal(pieces.join(""), reply.text, `turn ${reply.turn}'s pieces join into its recorded text`);
    }
  });
}
