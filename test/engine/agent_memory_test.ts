/**
 * Agent memory end to end: an engine, the real runtime connected with the runtime's own NATS user (its
 * permissions reach the memory bucket and nothing else of JetStream), and a scripted OpenAI-compatible model
 * that records what it is sent. Executions with the same rendered key continue one conversation; a different
 * key starts empty; the window bounds what is sent; a summary spends from the task's budget.
 */
import assert from "node:assert/strict";
import { Kvm } from "@nats-io/kv";
import { BUCKETS, Bus } from "../../pkg/nats/mod.ts";
import { startRuntime } from "../../pkg/runtime/service.ts";
import { startMockOpenAI } from "../support/mock_llm/mod.ts";
import { startEngineHarness } from "../support/engine.ts";

async function sha256Hex(text: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/** An engine and the real runtime (with the runtime's own NATS user) on a one-agent chat workflow. */
async function startChat(name: string, models: string, memory: string, budget = "") {
  const h = await startEngineHarness({
    "compozy.yaml": `name: ${name}
workflows: [{ source: ./wf.yaml }]
models:
${models}
`,
    "wf.yaml": `id: chat
agents:
  - id: assistant
    config: { $model: default }
    instructions: Remember the user.
    memory: ${memory}
    ${budget ? `budget: ${budget}` : ""}
    actions:
      - id: reply
        prompt: "{{ .input.message }}"
tasks:
  - id: reply
    use: agent(id=assistant)
    action: reply
    with: { message: "{{ .workflow.input.message }}" }
`,
  });
  const runtimeNc = await h.nats.connectAs("runtime");
  const runtime = startRuntime({ nc: runtimeNc, bus: new Bus(runtimeNc, { source: "runtime" }) });
  return { h, runtime, runtimeNc };
}

Deno.test({
  name: "agent memory: the same key continues a conversation, another key never sees it",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(t) {
    await using llm = startMockOpenAI();
    const { h, runtime, runtimeNc } = await startChat(
      "memory-e2e",
      `  - { id: default, provider: openai-compatible, model: m, api_key: k, base_url: ${llm.baseUrl} }`,
      `{ key: "user:{{ .workflow.input.user }}", window: 4 }`,
    );
    /** Runs one message and returns the conversation the model was sent (system prompt left out). */
    const say = async (user: string, message: string, answer: string) => {
      llm.enqueue({ type: "text", text: answer });
      const { execId } = await h.engine.client.trigger("chat", { user, message });
      const state = await h.engine.client.waitForEnd(execId, 30_000);
      assert.equal(state.status, "SUCCESS", JSON.stringify(state.error));
      assert.deepEqual(state.output, { text: answer });
      return (llm.requests.at(-1)!.body.messages as { role: string; content: string }[])
        .filter((m) => m.role !== "system")
        .map((m) => `${m.role}: ${m.content}`);
    };
    try {
      await t.step("a first execution starts with nothing remembered", async () => {
        assert.deepEqual(await say("ada", "My name is Ada.", "Hello Ada!"), ["user: My name is Ada."]);
      });

      await t.step("a second execution with the same key is sent the first one's conversation", async () => {
        assert.deepEqual(await say("ada", "What is my name?", "Ada."), [
          "user: My name is Ada.",
          "assistant: Hello Ada!",
          "user: What is my name?",
        ]);
      });

      await t.step("another key never sees it", async () => {
        assert.deepEqual(await say("bob", "What is my name?", "I do not know."), ["user: What is my name?"]);
      });

      await t.step(
        "an exchange too large for a memory document fails the task agent_memory_invalid; its turn is kept",
        async () => {
          const before = llm.requests.length;
          llm.enqueue({ type: "text", text: "That is long." });
          const message = "x".repeat(1_100_000);
          const { execId } = await h.engine.client.trigger("chat", { user: "carol", message });
          const state = await h.engine.client.waitForEnd(execId, 60_000);
          assert.equal(state.status, "FAILED");
          const error = state.tasks[0].error as { code: string; message: string; retryable?: boolean };
          assert.equal(error.code, "agent_memory_invalid", JSON.stringify(error).slice(0, 500));
          assert.match(error.message, /do not fit in a memory document \(1048576 bytes\)/);
          assert.notEqual(error.retryable, true);
          assert.equal(llm.requests.length - before, 1, "the model was asked once");
          assert.deepEqual(state.tasks[0].usage, { input_tokens: 10, output_tokens: 5, total_tokens: 15 });
          const replies = (await h.engine.client.events(execId)).filter((e) =>
            e.type === "agent.model_replied"
          );
          assert.equal(replies.length, 1, "the turn is in the history");
        },
      );

      await t.step(
        "a document corrupted in the bucket fails the task agent_memory_invalid naming its entry; the model is not asked",
        async () => {
          const kv = await new Kvm(h.nc).open(BUCKETS.agentMemory);
          const entry = await sha256Hex("memory-e2e/user:dave");
          await kv.put(entry, new TextEncoder().encode('{"messages": [{"role": "user", "content": 4'));
          const before = llm.requests.length;
          const { execId } = await h.engine.client.trigger("chat", { user: "dave", message: "Hi" });
          const state = await h.engine.client.waitForEnd(execId, 30_000);
          assert.equal(state.status, "FAILED");
          const error = state.tasks[0].error as { code: string; message: string; retryable?: boolean };
          assert.equal(error.code, "agent_memory_invalid", JSON.stringify(error));
          assert.notEqual(error.retryable, true);
          assert.equal(
            error.message,
            `agent memory 'memory-e2e/user:dave': the stored conversation is not JSON (bucket ` +
              `compozy_agent_memory, entry ${entry}: delete the entry to start this conversation afresh)`,
          );
          assert.equal(llm.requests.length, before, "the model is not asked");
          await kv.delete(entry);
          assert.deepEqual(await say("dave", "Hi again", "Hello Dave."), ["user: Hi again"]);
          await kv.purge(entry);
        },
      );

      await t.step("the window keeps the last 4 messages", async () => {
        assert.deepEqual(await say("ada", "And now?", "Still Ada."), [
          "user: My name is Ada.",
          "assistant: Hello Ada!",
          "user: What is my name?",
          "assistant: Ada.",
          "user: And now?",
        ]);
        assert.deepEqual(await say("ada", "Once more?", "Ada again."), [
          "user: What is my name?",
          "assistant: Ada.",
          "user: And now?",
          "assistant: Still Ada.",
          "user: Once more?",
        ]);
      });

      await t.step("the bucket holds one document per key, named by the project and the key", async () => {
        const kv = await new Kvm(h.nc).open(BUCKETS.agentMemory);
        const keys: string[] = [];
        for await (const key of await kv.keys()) keys.push(key);
        const docs = await Promise.all(
          keys.map(async (key) => (await kv.get(key))!.json<{ key: string }>().key),
        );
        assert.deepEqual(docs.sort(), ["memory-e2e/user:ada", "memory-e2e/user:bob"]);
      });
    } finally {
      await runtime.stop();
      await runtimeNc.close();
      await h.close();
    }
  },
});

Deno.test({
  name: "agent memory: what leaves the window is summarized by another model, and the summary is sent first",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(t) {
    await using llm = startMockOpenAI();
    await using summarizer = startMockOpenAI();
    const { h, runtime, runtimeNc } = await startChat(
      "summary-e2e",
      `  - { id: default, provider: openai-compatible, model: m, api_key: k, base_url: ${llm.baseUrl} }
  - { id: cheap, provider: openai-compatible, model: s, api_key: k, base_url: ${summarizer.baseUrl} }`,
      `
      key: "user:{{ .workflow.input.user }}"
      window: 2
      window_tokens: 1000
      summarize: { $model: cheap, max_tokens: 100 }`,
    );
    const say = async (message: string, answer: string) => {
      llm.enqueue({ type: "text", text: answer });
      const { execId } = await h.engine.client.trigger("chat", { user: "ada", message });
      const state = await h.engine.client.waitForEnd(execId, 30_000);
      assert.equal(state.status, "SUCCESS", JSON.stringify(state.error));
      const sent = (llm.requests.at(-1)!.body.messages as { role: string; content: string }[])
        .filter((m) => m.role !== "system")
        .map((m) => `${m.role}: ${m.content}`);
      return { sent, usage: state.usage! };
    };
    const storedSummary = async () => {
      const kv = await new Kvm(h.nc).open(BUCKETS.agentMemory);
      const keys: string[] = [];
      for await (const key of await kv.keys()) keys.push(key);
      assert.equal(keys.length, 1);
      return (await kv.get(keys[0]))!.json<{ summary?: string }>().summary;
    };
    try {
      await t.step("nothing has left the window yet: no summary request", async () => {
        const { usage } = await say("My name is Ada.", "Hello Ada!");
        assert.equal(summarizer.requests.length, 0);
        assert.equal(usage.total_tokens, 15);
      });

      await t.step("the first exchange leaves the window: the other model summarizes it", async () => {
        summarizer.enqueue({ type: "text", text: "The user is Ada." });
        const { usage } = await say("I live in Lisbon.", "Noted.");
        assert.equal(summarizer.requests.length, 1);
        const asked = JSON.stringify(summarizer.requests[0].body.messages);
        assert.match(asked, /user: My name is Ada\.\\n\\nassistant: Hello Ada!/);
        assert.equal(summarizer.requests[0].body.max_tokens, 100);
        assert.equal(await storedSummary(), "The user is Ada.");
        // The summary request's tokens count in the task's (and so the execution's) usage.
        assert.equal(usage.total_tokens, 30);
      });

      await t.step("the next task is sent the summary before the window; the summary grows", async () => {
        summarizer.enqueue({ type: "text", text: "The user is Ada; she lives in Lisbon." });
        const { sent } = await say("Where do I live?", "In Lisbon.");
        assert.deepEqual(sent, [
          "user: Summary of our earlier conversation: The user is Ada.",
          "user: I live in Lisbon.",
          "assistant: Noted.",
          "user: Where do I live?",
        ]);
        assert.match(
          JSON.stringify(summarizer.requests[1].body.messages),
          /Summary so far:\\nThe user is Ada\./,
        );
        assert.equal(await storedSummary(), "The user is Ada; she lives in Lisbon.");
      });

      await t.step("a failed summary request is logged; the answer and the memory stand", async () => {
        summarizer.enqueue({ type: "error", status: 500 });
        const { sent } = await say("Thanks!", "You are welcome.");
        assert.equal(
          sent[0],
          "user: Summary of our earlier conversation: The user is Ada; she lives in Lisbon.",
        );
        assert.equal(summarizer.requests.length, 3);
        assert.equal(await storedSummary(), "The user is Ada; she lives in Lisbon.");
      });
    } finally {
      await runtime.stop();
      await runtimeNc.close();
      await h.close();
    }
  },
});

Deno.test({
  name: "agent memory: a summary spends from the task's budget, and is not asked for when it cannot fit",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(t) {
    await using llm = startMockOpenAI();
    await using summarizer = startMockOpenAI();
    // Each reply of the agent's model costs 15 tokens; a summary may take 100 tokens of output.
    const { h, runtime, runtimeNc } = await startChat(
      "summary-budget",
      `  - { id: default, provider: openai-compatible, model: m, api_key: k, base_url: ${llm.baseUrl} }
  - { id: cheap, provider: openai-compatible, model: s, api_key: k, base_url: ${summarizer.baseUrl} }`,
      `
      key: "user:{{ .workflow.input.user }}"
      window: 2
      summarize: { $model: cheap, max_tokens: 100 }`,
      "{ max_total_tokens: 300 }",
    );
    const say = async (message: string, answer: string) => {
      llm.enqueue({ type: "text", text: answer });
      const { execId } = await h.engine.client.trigger("chat", { user: "ada", message });
      return await h.engine.client.waitForEnd(execId, 30_000);
    };
    const stored = async () => {
      const kv = await new Kvm(h.nc).open(BUCKETS.agentMemory);
      const keys: string[] = [];
      for await (const key of await kv.keys()) keys.push(key);
      assert.equal(keys.length, 1);
      return (await kv.get(keys[0]))!.json<{ summary?: string; messages: { content: string }[] }>();
    };
    try {
      await t.step("a summary whose estimate does not fit what is left is not asked for", async () => {
        // 1,200 characters leaving the window make a summary prompt of over 300 tokens at 4 characters each.
        const first = await say("A".repeat(1_200), "Hello Ada!");
        assert.equal(first.status, "SUCCESS", JSON.stringify(first.error));
        const second = await say("Short.", "Noted.");
        assert.equal(second.status, "SUCCESS", JSON.stringify(second.error));
        assert.equal(summarizer.requests.length, 0, "the summary would have crossed the budget");
        assert.equal(second.usage?.total_tokens, 15);
        const doc = await stored();
        assert.equal(doc.summary, undefined);
        assert.deepEqual(doc.messages.map((m) => m.content), ["Short.", "Noted."]);
      });

      await t.step(
        "a summary that crosses the budget anyway fails the task; nothing is remembered",
        async () => {
          // The estimate (a short prompt, 100 tokens out) fits; the model then reports 400 tokens in.
          summarizer.enqueue({
            type: "text",
            text: "Ada said short things.",
            usage: { inputTokens: 400, outputTokens: 10 },
          });
          const state = await say("Anything else?", "No.");
          assert.equal(summarizer.requests.length, 1);
          assert.equal(state.status, "FAILED");
          const task = state.tasks[0];
          assert.equal(task.error?.code, "agent_budget_exceeded");
          assert.match(
            task.error?.message ?? "",
            /memory summary: the agent's budget allows max_total_tokens 300/,
          );
          assert.equal(task.usage?.total_tokens, 425, "the reply's 15 tokens and the summary's 410");
          const doc = await stored();
          assert.equal(doc.summary, undefined);
          assert.deepEqual(
            doc.messages.map((m) => m.content),
            ["Short.", "Noted."],
            "the failed task is not remembered",
          );
        },
      );
    } finally {
      await runtime.stop();
      await runtimeNc.close();
      await h.close();
    }
  },
});
