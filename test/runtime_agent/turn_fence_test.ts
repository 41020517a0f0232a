/**
 * The turn fence: two runners of one agent task at once (two runtimes, or a command re-sent while its first
 * delivery runs) against a real nats-server, with the runtime's own NATS user, and a loopback OpenAI server
 * that counts requests. Every turn is asked once and every tool call runs once, whoever makes it; the other
 * runner replays it; the history holds each turn once. A claim whose runner died is taken over after its lease.
 */

import assert from "node:assert/strict";
import { create, fromBinary } from "@bufbuild/protobuf";
import { jetstream } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/transport-node";
import { BUCKETS, Bus, connectNats, provisionJetStream, readStream, STREAMS } from "../../pkg/nats/mod.ts";
import * as pb from "../../pkg/pb/mod.ts";
import { runAgent } from "../../pkg/runtime/agent/mod.ts";
import { AgentTurnFences } from "../../pkg/runtime/agent_turn_fence.ts";
import { journalOf } from "../../pkg/runtime/agent_turns.ts";
import { type MockReply, type RecordedRequest, startMockOpenAI } from "../support/mock_llm/mod.ts";
import { startTestNats } from "../support/nats.ts";
import { agentCall, openAIModel, WEATHER_TOOL } from "./_agent_call.ts";

/** Three turns: two ask for the weather, the third answers. The reply depends on the turn only. */
function replyForTurn(request: RecordedRequest): MockReply {
  const turn = 1 + (request.body.messages as { role: string }[]).filter((m) => m.role === "tool").length;
  const reply: MockReply = turn < 3
    ? {
      type: "tool_calls",
      calls: [{ id: `c${turn}`, name: "weather_tool", arguments: { city: `city${turn}` } }],
    }
    : { type: "text", text: "Take a coat." };
  // Slow enough that the second runner arrives while the first one's request is still out.
  return { ...reply, delayMs: 150 };
}

async function waitFor(what: string, condition: () => boolean, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

Deno.test("turn fence: two runners of one agent task ask each turn once", async (t) => {
  const nats = await startTestNats();
  const admin = await connectNats(nats.url);
  await provisionJetStream(admin);
  const runtimes: NatsConnection[] = [await nats.connectAs("runtime"), await nats.connectAs("runtime")];
  await using mock = startMockOpenAI(replyForTurn);
  const toolRuns: string[] = [];
  const correlationId = crypto.randomUUID();

  /** One runner of task `taskExecId`, on runtime connection `which`, as the runtime service builds it. */
  const runner = (which: number, taskExecId: string, fences = new AgentTurnFences(runtimes[which])) => {
    const nc = runtimes[which];
    const message = create(pb.AgentExecuteSchema, {
      metadata: { correlationId },
      workflow: { id: "wf", execId: correlationId },
      task: { id: "advise", execId: taskExecId },
      agent: { id: "forecaster", execId: taskExecId, actionId: "advise" },
    });
    return runAgent(agentCall(openAIModel(mock), {
      tools: [WEATHER_TOOL],
      taskExecId,
      journal: journalOf(new Bus(nc, { source: "runtime" }), message, fences.forTask(taskExecId)),
      callTool: async (_id, input, ref) => {
        toolRuns.push(ref.key);
        await new Promise((resolve) => setTimeout(resolve, 100));
        return { tempC: (input as { city: string }).city.length };
      },
    }));
  };

  /** How many times the history holds each turn of `taskExecId`. */
  const recordedTurns = async (taskExecId: string) => {
    const counts: Record<string, number> = {};
    const js = jetstream(admin);
    for (const msg of await readStream(js, STREAMS.events, `compozy.${correlationId}.agent.evts.*.*`)) {
      const type = msg.subject.slice(msg.subject.lastIndexOf(".") + 1);
      if (type !== "model_replied" && type !== "tool_call_ended") continue;
      const decoded = type === "model_replied"
        ? fromBinary(pb.AgentModelRepliedSchema, msg.data)
        : fromBinary(pb.AgentToolCallEndedSchema, msg.data);
      if (decoded.task?.execId !== taskExecId) continue;
      const name = `${type} ${decoded.turn}`;
      counts[name] = (counts[name] ?? 0) + 1;
    }
    return counts;
  };

  const assertOnce = async (taskExecId: string, requestsBefore: number) => {
    assert.equal(mock.requests.length - requestsBefore, 3, "each of the three turns is asked once");
    assert.deepEqual(
      toolRuns.filter((key) => key.startsWith(taskExecId)).sort(),
      [`${taskExecId}:1:0`, `${taskExecId}:2:0`],
      "each tool call runs once",
    );
    assert.deepEqual(await recordedTurns(taskExecId), {
      "model_replied 1": 1,
      "tool_call_ended 1": 1,
      "model_replied 2": 1,
      "tool_call_ended 2": 1,
      "model_replied 3": 1,
    });
  };

  try {
    await t.step("a second runner arriving mid-turn waits and replays", async () => {
      const taskExecId = crypto.randomUUID();
      const before = mock.requests.length;
      const first = runner(0, taskExecId);
      await waitFor("the first runner's first request", () => mock.requests.length > before);
      const second = runner(1, taskExecId);
      const [a, b] = await Promise.all([first, second]);
      assert.deepEqual(a, b, "both runners end with the same answer and usage");
      assert.deepEqual(a.ok && a.output, { text: "Take a coat." });
      await assertOnce(taskExecId, before);
    });

    await t.step("two runners starting at once: one claims each turn", async () => {
      const taskExecId = crypto.randomUUID();
      const before = mock.requests.length;
      const [a, b] = await Promise.all([runner(0, taskExecId), runner(1, taskExecId)]);
      assert.equal(a.ok && b.ok, true);
      assert.deepEqual(a, b);
      await assertOnce(taskExecId, before);
    });

    await t.step("a claim whose runner died is taken over after its lease", async () => {
      const taskExecId = crypto.randomUUID();
      const kv = await new Kvm(admin).open(BUCKETS.agentTurns);
      // A runner claimed turn 1 and died before it renewed its claim.
      await kv.create(`${taskExecId}.reply.1`, JSON.stringify({ runner: "gone" }));
      const before = mock.requests.length;
      const result = await runner(0, taskExecId, new AgentTurnFences(runtimes[0], 300));
      assert.deepEqual(result.ok && result.output, { text: "Take a coat." });
      await assertOnce(taskExecId, before);
      const made = await kv.get(`${taskExecId}.reply.1`);
      assert.equal(JSON.parse(made!.string()).made.turn, 1, "the taker's reply is what the key holds");
    });

    await t.step(
      "a runner whose request fails releases its claim: the waiting one asks at once",
      async () => {
        const taskExecId = crypto.randomUUID();
        const before = mock.requests.length;
        mock.enqueue({ type: "error", status: 400, message: "bad request", delayMs: 150 });
        // The lease is far longer than the test's bound: only the release lets the second runner go on.
        const fences = [new AgentTurnFences(runtimes[0], 600_000), new AgentTurnFences(runtimes[1], 600_000)];
        const first = runner(0, taskExecId, fences[0]);
        await waitFor("the first runner's first request", () => mock.requests.length > before);
        const second = runner(1, taskExecId, fences[1]);
        const failed = await first;
        assert.equal(!failed.ok && failed.failure.code, "agent_provider_error");
        const result = await second;
        assert.deepEqual(result.ok && result.output, { text: "Take a coat." });
        assert.equal(mock.requests.length - before, 4, "the failed request, then each turn once");
      },
    );
  } finally {
    for (const nc of [...runtimes, admin]) await nc.close();
    await nats.stop();
  }
});
