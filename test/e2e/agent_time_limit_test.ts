/**
 * A model that never answers: the agent task ends at its `timeout` with an `agent_timeout` that says which
 * limit ran out. It said "aborted by the caller: The operation was aborted due to timeout", which names
 * neither the limit nor who set it (outside review rev35). Real `compozy dev` against a loopback OpenAI
 * server that holds its reply.
 */
import assert from "node:assert/strict";
import { startMockOpenAI } from "../support/mock_llm/mod.ts";
import { startDevOn } from "./support/dev_server.ts";

Deno.test({
  name: "an agent task whose model hangs fails at its timeout, naming the limit",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    await using llm = startMockOpenAI();
    llm.enqueue({ type: "text", text: "too late", delayMs: 120_000 });
    const dev = await startDevOn({
      "compozy.yaml": [
        "name: hang",
        "workflows:",
        "  - source: ./w.yaml",
        "models:",
        "  - id: slow",
        "    provider: openai-compatible",
        "    model: slow",
        '    base_url: "{{ .env.MOCK_LLM_URL }}"',
        "    api_key: test",
        "",
      ].join("\n"),
      "w.yaml": [
        "id: w",
        "agents:",
        "  - id: thinker",
        "    config: { $model: slow }",
        "    instructions: You think.",
        "    actions:",
        "      - id: ponder",
        "        prompt: Think",
        "tasks:",
        "  - id: think",
        "    use: agent(id=thinker)",
        "    action: ponder",
        "    timeout: 2s",
        "",
      ].join("\n"),
    }, { MOCK_LLM_URL: llm.baseUrl });
    try {
      const state = await dev.run("w");
      assert.equal(state.status, "FAILED");
      assert.equal(state.error?.code, "agent_timeout", JSON.stringify(state.error));
      assert.match(
        state.error!.message,
        /^agent 'thinker' action 'ponder': .*the call's time limit of 2000 ms ran out \(the task's timeout/,
      );
    } finally {
      await dev.close();
    }
  },
});
