import assert from "node:assert/strict";
import { AgentFailure } from "./agent/mod.ts";
import { appendExchange, type MemoryDocument, parseMemory, windowOf } from "./agent_memory.ts";

const exchange = (n: number) => [
  { role: "user" as const, content: `prompt ${n}` },
  { role: "assistant" as const, content: `answer ${n}` },
];
const empty: MemoryDocument = { key: "p/user:ada", messages: [] };

Deno.test("appendExchange keeps the last `window` messages, starting at a prompt", () => {
  let doc = empty;
  for (let n = 1; n <= 3; n++) doc = appendExchange(doc, exchange(n), `task-${n}`, { window: 3 }, 1_000_000);
  // The window of 3 would start at "answer 2": an answer without its prompt is dropped too.
  assert.deepEqual(doc.messages.map((m) => m.content), ["prompt 3", "answer 3"]);
  assert.deepEqual(doc.messages.map((m) => m.task), ["task-3", "task-3"]);
  doc = appendExchange(doc, exchange(4), "task-4", { window: 4 }, 1_000_000);
  assert.deepEqual(doc.messages.map((m) => m.content), ["prompt 3", "answer 3", "prompt 4", "answer 4"]);
});

Deno.test("appendExchange writes a task once, however often it runs", () => {
  const once = appendExchange(empty, exchange(1), "task-1", { window: 20 }, 1_000_000);
  assert.equal(appendExchange(once, exchange(1), "task-1", { window: 20 }, 1_000_000), once);
});

Deno.test("appendExchange drops the oldest messages to fit, and refuses an exchange that cannot fit", () => {
  let doc = empty;
  for (let n = 1; n <= 10; n++) doc = appendExchange(doc, exchange(n), `task-${n}`, { window: 100 }, 400);
  assert.ok(new TextEncoder().encode(JSON.stringify(doc)).length <= 400);
  assert.deepEqual(doc.messages.at(-1), { role: "assistant", content: "answer 10", task: "task-10" });
  assert.equal(doc.messages[0].role, "user");
  assert.throws(
    () => appendExchange(empty, [{ role: "user", content: "x".repeat(500) }], "big", { window: 20 }, 400),
    (e: unknown) =>
      e instanceof AgentFailure && e.code === "agent_memory_invalid" && !e.retryable &&
      /do not fit/.test(e.message),
  );
});

Deno.test("parseMemory refuses what is not a stored conversation", () => {
  const bytes = (value: unknown) => new TextEncoder().encode(JSON.stringify(value));
  const doc = { key: "k", messages: [{ role: "user", content: "hi", task: "t" }] };
  assert.deepEqual(parseMemory(bytes(doc), "k"), doc);
  for (
    const bad of [
      new TextEncoder().encode("{"),
      bytes({ messages: [{ role: "system", content: "", task: "t" }] }),
    ]
  ) {
    assert.throws(
      () => parseMemory(bad, "k"),
      (e: unknown) => e instanceof AgentFailure && e.code === "agent_memory_invalid",
    );
  }
});

Deno.test("windowOf bounds by tokens too (4 characters a token), still starting at a prompt", () => {
  const messages = [
    { role: "user" as const, content: "p".repeat(40) }, // 10 tokens
    { role: "assistant" as const, content: "a".repeat(40) },
    { role: "user" as const, content: "q".repeat(8) }, // 2 tokens
    { role: "assistant" as const, content: "b".repeat(12) }, // 3 tokens
  ];
  assert.equal(windowOf(messages, { window: 10 }).length, 4);
  assert.deepEqual(windowOf(messages, { window: 10, windowTokens: 5 }), messages.slice(2));
  // 14 tokens would reach into the first answer, which goes without its prompt.
  assert.deepEqual(windowOf(messages, { window: 10, windowTokens: 14 }), messages.slice(2));
  assert.deepEqual(windowOf(messages, { window: 10, windowTokens: 25 }), messages);
  assert.deepEqual(windowOf(messages, { window: 10, windowTokens: 1 }), []);
});

Deno.test("appendExchange keeps this task's exchange whatever the token bound, and the summary", () => {
  const doc = appendExchange({ ...empty, summary: "earlier" }, exchange(1), "task-1", {
    window: 20,
    windowTokens: 1,
  }, 1_000_000);
  assert.deepEqual(doc.messages.map((m) => m.content), ["prompt 1", "answer 1"]);
  assert.equal(doc.summary, "earlier");
});
