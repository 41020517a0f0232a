import assert from "node:assert/strict";
import { ThinkingLine } from "./thinking_line.ts";
import { paintFor } from "./terminal.ts";

const plain = paintFor({ isTerminal: () => false });

const delta = (agentExecId: string, turn: number, text: string) => ({
  subject: `compozy.run.agent.live.${agentExecId}.delta`,
  type: "agent.delta" as const,
  time: "2026-01-01T10:00:00.000Z",
  data: {
    workflow: { id: "advise", execId: "0193f0a4-7b3c-7d2e-9a41-6c0f3b2a1e55" },
    task: { id: "advise" },
    agent: { execId: agentExecId },
    turn,
    text,
  },
});

Deno.test("run --wait: one line per reply as it streams, closed before the next line", () => {
  const line = new ThinkingLine(plain);
  const written = [
    line.delta(delta("a1", 1, "Take a")),
    line.delta(delta("a1", 1, " light\njacket")),
    line.delta(delta("a1", 2, " and go")),
    line.close(),
    line.close(),
  ].join("");
  assert.equal(
    written,
    "10:00:00.000 advise …3b2a1e55 advise … Take a light jacket\n" +
      "10:00:00.000 advise …3b2a1e55 advise … and go\n",
  );
});
