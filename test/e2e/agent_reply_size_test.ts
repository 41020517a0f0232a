/**
 * A model reply larger than one NATS message can carry (a runaway model, no `max_tokens`): it cannot be
 * recorded as a turn, so the task must fail saying so, naming the agent, the action, the turn and the sizes,
 * and keep the tokens the reply cost. It failed `agent_turn_unrecorded` with "agent turn fence
 * <id>.reply.1: writing (1 attempts) failed: 'payload' max_payload size exceeded" and a usage of 0
 * (outside review rev35). Real `compozy dev` (NATS, engine, runtime, HTTP) against a loopback OpenAI server.
 */
import assert from "node:assert/strict";
import { startMockOpenAI } from "../support/mock_llm/mod.ts";
import { startDevOn } from "./support/dev_server.ts";

const PROJECT = {
  "compozy.yaml": [
    "name: runaway",
    "workflows:",
    "  - source: ./w.yaml",
    "models:",
    "  - id: chatty",
    "    provider: openai-compatible",
    "    model: chatty",
    '    base_url: "{{ .env.MOCK_LLM_URL }}"',
    "    api_key: test",
    "",
  ].join("\n"),
  "w.yaml": [
    "id: w",
    "agents:",
    "  - id: writer",
    "    config: { $model: chatty }",
    "    instructions: You write.",
    "    actions:",
    "      - id: essay",
    "        prompt: Write an essay",
    "tasks:",
    "  - id: write",
    "    use: agent(id=writer)",
    "    action: essay",
    "",
  ].join("\n"),
};

Deno.test({
  name: "a model reply too large to record fails its task naming the agent, the action and the sizes",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    await using llm = startMockOpenAI();
    // 10 MB of text, over the 8 MiB a message of the managed nats-server carries; a hundred words so that it
    // streams in a few chunks.
    llm.enqueue({
      type: "text",
      text: Array.from({ length: 100 }, () => "y".repeat(100_000)).join(" "),
      usage: { inputTokens: 7, outputTokens: 300_000 },
    });
    const dev = await startDevOn(PROJECT, { MOCK_LLM_URL: llm.baseUrl });
    try {
      const state = await dev.run("w");
      assert.equal(state.status, "FAILED");
      const error = state.error!;
      assert.equal(error.code, "agent_reply_too_large", JSON.stringify(error));
      assert.match(error.message, /^agent 'writer' action 'essay': turn 1: the model's reply is \d+ bytes/);
      assert.match(error.message, /max_tokens/);
      const details = error.details as { turn: number; bytes: number; limit: number };
      assert.equal(details.turn, 1);
      assert.ok(details.bytes > 10_000_000 && details.limit < details.bytes, JSON.stringify(details));
      // The tokens the reply cost are spent: they count in the task's and the execution's usage.
      assert.deepEqual(state.tasks[0].usage, {
        input_tokens: 7,
        output_tokens: 300_000,
        total_tokens: 300_007,
      });
      assert.equal(state.usage?.output_tokens, 300_000);
      assert.equal(llm.requests.length, 1, "the model was asked once: the failure is not retried");
    } finally {
      await dev.close();
    }
  },
});
