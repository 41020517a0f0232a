import assert from "node:assert/strict";
import { MAX_LINE_CHARS, ThinkingLog } from "./thinking_log.ts";
import { paintFor } from "./terminal.ts";

const plain = paintFor({ isTerminal: () => false });
const T0 = Date.parse("2026-01-01T10:00:00.000Z");

const delta = (agentExecId: string, turn: number, text: string) => ({
  workflow: { id: "advise", execId: "0193f0a4-7b3c-7d2e-9a41-6c0f3b2a1e55" },
  task: { id: "ask" },
  agent: { execId: agentExecId },
  turn,
  text,
});

Deno.test("dev thinking log: deltas coalesce into at most one line per reply per second", () => {
  const log = new ThinkingLog(plain, 1_000);
  log.add(delta("a1", 1, "Let me"), T0);
  log.add(delta("a1", 1, " look at\nthe"), T0 + 100);
  assert.deepEqual(log.due(T0 + 999), [], "nothing before a second of text");
  assert.deepEqual(log.due(T0 + 1_000), ["10:00:01.000 advise …3b2a1e55 ask … Let me look at the"]);
  assert.deepEqual(log.due(T0 + 1_500), [], "nothing new, no line");
  log.add(delta("a1", 1, " weather"), T0 + 1_600);
  assert.deepEqual(log.due(T0 + 2_000), [], "the new text is younger than a second");
  assert.deepEqual(
    log.end("a1", 1, T0 + 2_100),
    ["10:00:02.100 advise …3b2a1e55 ask … weather"],
    "the rest comes out when the turn is recorded",
  );
  assert.deepEqual(log.end("a1", 1, T0 + 2_200), [], "an ended reply is forgotten");
});

Deno.test("dev thinking log: replies of different calls and turns stay apart; a call's end flushes its turns", () => {
  const log = new ThinkingLog(plain, 1_000);
  log.add(delta("a1", 1, "first agent"), T0);
  log.add(delta("b2", 3, "second agent"), T0);
  log.add(delta("a1", 2, "next turn"), T0);
  assert.deepEqual(log.due(T0 + 1_000).map((line) => line.split(" … ")[1]), [
    "first agent",
    "second agent",
    "next turn",
  ]);
  log.add(delta("a1", 1, "more"), T0 + 1_100);
  log.add(delta("a1", 2, "again"), T0 + 1_100);
  log.add(delta("b2", 3, "other"), T0 + 1_100);
  assert.deepEqual(log.end("a1", undefined, T0 + 1_200).map((line) => line.split(" … ")[1]), [
    "more",
    "again",
  ]);
  assert.deepEqual(log.due(T0 + 2_100).map((line) => line.split(" … ")[1]), ["other"]);
});

Deno.test("dev thinking log: a long line is cut, whitespace-only text makes no line", () => {
  const log = new ThinkingLog(plain, 1_000);
  log.add(delta("a1", 1, "word ".repeat(100)), T0);
  const [line] = log.due(T0 + 1_000);
  const text = line.split(" … ")[1];
  assert.equal(text.length, MAX_LINE_CHARS);
  assert.ok(text.endsWith("…"));
  log.add(delta("a1", 1, "  \n "), T0 + 1_100);
  assert.deepEqual(log.due(T0 + 5_000), []);
  assert.deepEqual(log.end("a1", 1, T0 + 5_000), []);
});
