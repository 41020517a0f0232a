/**
 * An agent thinking, where users look: against `compozy dev` (real NATS, engine, runtime, HTTP) and a
 * loopback OpenAI-compatible server that streams its replies word by word, the execution's SSE stream with
 * `?deltas=true` carries the text of each reply as `agent.delta` messages (no `id`) while the reply is
 * written, and before its recorded `agent.model_replied`; the stored history holds none of them; a stream
 * without `?deltas=true` carries none; `compozy run --wait` prints the reply as it streams; `compozy dev`'s
 * live log shows it in whole lines (a line per reply per second at most) before each turn's line.
 */
import assert from "node:assert/strict";
import { resolve } from "node:path";
import { startMockOpenAI } from "../support/mock_llm/mod.ts";
import { runCli, startDev } from "./support/dev_server.ts";

const FIXTURE = resolve(import.meta.dirname!, "fixtures/console");
const ADVICE = { advice: "Wear a light jacket and bring an umbrella" };

interface SseMessage {
  event: string;
  id?: string;
  data: { type: string; data: { turn?: number; seq?: number; text?: string } };
}

/** Reads an SSE response to its end: every message with its `event`, `id` and parsed `data`. */
async function readSse(res: Response): Promise<SseMessage[]> {
  const messages: SseMessage[] = [];
  let buffer = "";
  for await (const chunk of res.body!.pipeThrough(new TextDecoderStream())) {
    buffer += chunk;
    let end: number;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end).split("\n");
      buffer = buffer.slice(end + 2);
      const field = (name: string) =>
        block.filter((l) => l.startsWith(`${name}:`)).map((l) => l.slice(name.length + 1).trimStart());
      const data = field("data");
      if (data.length === 0) continue;
      messages.push({ event: field("event")[0], id: field("id")[0], data: JSON.parse(data.join("\n")) });
    }
  }
  return messages;
}

/** A tool call with prose first, then the structured answer: both stream a word every 150 ms. */
function scriptAdvice(llm: ReturnType<typeof startMockOpenAI>) {
  llm.enqueue(
    {
      type: "tool_calls",
      text: "Let me look at the weather first",
      calls: [{ name: "weather_tool", arguments: { city: "Lisbon" } }],
      // Time for the SSE client to subscribe before the first word.
      delayMs: 1_000,
      chunkDelayMs: 150,
    },
    { type: "json", value: ADVICE, chunkDelayMs: 150 },
  );
}

Deno.test({
  name: "an agent's reply streams to SSE clients and `run --wait`, and never into the history",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async (t) => {
    await using llm = startMockOpenAI();
    const dev = await startDev({ fixture: FIXTURE, env: { MOCK_LLM_URL: llm.baseUrl } });
    const start = async () => {
      const res = await dev.fetch("/api/workflows/advise/executions", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ input: { city: "Lisbon" } }),
      });
      assert.equal(res.status, 202);
      return (await res.json()).exec_id as string;
    };
    const sse = (execId: string, query = "") =>
      dev.fetch(`/api/executions/${execId}/events${query}`, { headers: { accept: "text/event-stream" } });
    try {
      await t.step("SSE with ?deltas=true: the text as it is written, then the recorded turn", async () => {
        scriptAdvice(llm);
        const execId = await start();
        const [withDeltas, without] = await Promise.all([sse(execId, "?deltas=true"), sse(execId)]);
        const [messages, plain] = await Promise.all([readSse(withDeltas), readSse(without)]);
        const deltas = messages.filter((m) => m.event === "agent.delta");
        for (const delta of deltas) {
          assert.equal(delta.id, undefined, "a delta is not in the history, so it has no id");
          assert.equal(delta.data.type, "agent.delta");
        }
        const textOf = (turn: number) =>
          deltas.filter((d) => d.data.data.turn === turn).map((d) => d.data.data.text).join("");
        assert.equal(textOf(1), "Let me look at the weather first");
        assert.equal(textOf(2), JSON.stringify(ADVICE));
        assert.ok(
          deltas.filter((d) => d.data.data.turn === 2).length >= 4,
          `the answer came in pieces: ${JSON.stringify(deltas.map((d) => d.data.data))}`,
        );
        const seqs = deltas.map((d) => d.data.data.seq);
        assert.deepEqual(seqs, [...seqs].sort((a, b) => a! - b!), "deltas arrive in order");
        for (const turn of [1, 2]) {
          const lastDelta = messages.findLastIndex((m) =>
            m.event === "agent.delta" && m.data.data.turn === turn
          );
          const replied = messages.findIndex((m) =>
            m.event === "agent.model_replied" && m.data.data.turn === turn
          );
          assert.ok(lastDelta >= 0 && replied > lastDelta, `turn ${turn} streamed before it was recorded`);
        }
        assert.equal(messages.at(-1)?.event, "workflow.success");
        assert.ok(plain.length > 0 && plain.every((m) => m.event !== "agent.delta"), "deltas are opt-in");

        const short = execId.slice(-8);
        await dev.waitForLine(new RegExp(`…${short} .*↳ agent forecaster turn 2:`));
        const devLines = dev.lines.filter((line) => line.includes(`…${short} `));
        const thinkingBefore = (turn: number) => {
          const turnLine = devLines.findIndex((line) => line.includes(`↳ agent forecaster turn ${turn}:`));
          const previousTurn = turn === 1
            ? -1
            : devLines.findIndex((line) => line.includes(`↳ agent forecaster turn ${turn - 1}:`));
          return devLines.slice(previousTurn + 1, turnLine)
            .filter((line) => line.includes(" advise … "))
            .map((line) => line.slice(line.indexOf(" advise … ") + " advise … ".length));
        };
        const replies: Array<[number, string]> = [[1, "Let me look at the weather first"], [
          2,
          JSON.stringify(ADVICE),
        ]];
        for (const [turn, text] of replies) {
          const lines = thinkingBefore(turn);
          // How many lines depends on the pace of the stream; coalescing itself is cli/thinking_log_test.ts's.
          assert.ok(lines.length >= 1, `dev: turn ${turn} shown: ${devLines.join("\n")}`);
          assert.equal(
            lines.join(" "),
            text,
            `dev: turn ${turn}'s lines say its reply, before its turn line`,
          );
        }

        const history = await (await dev.fetch(`/api/executions/${execId}/events`)).json();
        const types: string[] = history.events.map((e: { type: string }) => e.type);
        assert.ok(types.includes("agent.model_replied"));
        assert.ok(!types.some((type) => type.includes("delta")), `history: ${types.join(", ")}`);
      });

      await t.step("`compozy run --wait` prints each reply on its own line as it streams", async () => {
        scriptAdvice(llm);
        const run = await runCli([
          "run",
          "advise",
          "--input",
          '{"city":"Lisbon"}',
          "--wait",
          "--server",
          dev.url,
        ]);
        assert.equal(run.code, 0, run.stderr);
        const lines = run.stdout.split("\n");
        const answer = lines.findIndex((l) => l.endsWith(`advise … ${JSON.stringify(ADVICE)}`));
        assert.ok(answer >= 0, run.stdout);
        assert.ok(lines.some((l) => l.endsWith("advise … Let me look at the weather first")), run.stdout);
        // The recorded turn's line follows the streamed text, on a line of its own.
        assert.match(lines[answer + 1], /↳ agent forecaster turn 2: answered/);
      });
    } finally {
      await dev.stop();
    }
  },
});
