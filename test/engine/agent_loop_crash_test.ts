/**
 * The durable agent loop against real processes: a 6-turn loop (five tool calls, then the answer) on the
 * OpenAI-compatible loopback server, while the runtime process (then, in a second case, the engine process) is
 * SIGKILLed at random turns: on a model request, or while a tool call runs. The model server counts the
 * requests of each turn and the tool server each call: no turn is asked again once its reply is stored in the
 * history, no tool call runs again once its result is stored, and the task ends with the right output.
 */
import assert from "node:assert/strict";
import { createExecutionClient } from "../../engine/mod.ts";
import { loadProject } from "../../engine/domain/project/mod.ts";
import {
  Bus,
  connectNats,
  decodeBySubject,
  provisionJetStream,
  readStream,
  STREAMS,
} from "../../pkg/nats/mod.ts";
import { writeProject } from "../support/engine.ts";
import { spawnEngineProcess } from "../support/engine_process.ts";
import { type RecordedRequest, startMockOpenAI } from "../support/mock_llm/mod.ts";
import { startTestNats } from "../support/nats.ts";
import { startRuntimeProcess, type TestRuntime } from "../support/runtime.ts";

const TOOL_TURNS = 5;
const EXPECTED_TOTAL = 10 + 20 + 30 + 40 + 50;

interface Kill {
  turn: number;
  /** On the model request of `turn`, or during its tool call. */
  at: "model" | "tool";
}

/** Two kill points at distinct random turns (a tool kill only where the turn has a tool call). */
function randomKills(): Kill[] {
  const kills: Kill[] = [];
  while (kills.length < 2) {
    const at = Math.random() < 0.5 ? "model" : "tool";
    const turn = 1 + Math.floor(Math.random() * (at === "model" ? TOOL_TURNS + 1 : TOOL_TURNS));
    if (!kills.some((k) => k.turn === turn)) kills.push({ turn, at });
  }
  return kills;
}

/** Which turn a request asks for: one more than the replies already in its conversation. */
function turnOf(request: RecordedRequest): number {
  return request.body.messages.filter((m: { role: string }) => m.role === "assistant").length + 1;
}

/** The answer of turn `turn`: a tool call, or after five of them the sum of their results. */
function replyFor(request: RecordedRequest) {
  const turn = turnOf(request);
  if (turn <= TOOL_TURNS) {
    return { type: "tool_calls" as const, calls: [{ name: "step", arguments: { n: turn } }] };
  }
  const total = request.body.messages
    .filter((m: { role: string }) => m.role === "tool")
    .reduce((sum: number, m: { content: string }) => sum + (JSON.parse(m.content) as { n: number }).n, 0);
  return { type: "json" as const, value: { total } };
}

function project(llmUrl: string, toolPort: number): Record<string, string> {
  return {
    "compozy.yaml": `name: loop
workflows: [{ source: ./wf.yaml }]
models:
  - { id: default, provider: openai-compatible, model: m, api_key: k, base_url: ${llmUrl} }
`,
    "wf.yaml": `id: loop
tools:
  - id: step
    execute: ./step.ts
    permissions: { net: ["127.0.0.1:${toolPort}"] }
agents:
  - id: looper
    config: { $model: default }
    instructions: Call step five times, then give the total.
    tools: [step]
    max_steps: 8
    actions:
      - id: run
        prompt: go
        output: { type: object, properties: { total: { type: number } }, required: [total] }
tasks:
  - id: loop
    use: agent(id=looper)
    action: run
    timeout: 30s
    retry: { max_attempts: 10, backoff: { initial: 100ms, max: 500ms, factor: 2 } }
`,
    "step.ts": `export default async (input: { n: number }, ctx: { taskExecId: string }) => {
  const res = await fetch("http://127.0.0.1:${toolPort}/step", {
    method: "POST",
    body: JSON.stringify({ n: input.n, key: ctx.taskExecId }),
  });
  return await res.json();
};
`,
  };
}

interface Seen {
  turn: number;
  at: number;
}

async function runLoop(victim: "runtime" | "engine", kills: Kill[]): Promise<void> {
  const label = `${victim} killed at ${JSON.stringify(kills)}`;
  const nats = await startTestNats();
  const nc = await connectNats(nats.url, { name: "agent-loop-crash-test" });
  await provisionJetStream(nc);
  const bus = new Bus(nc, { source: "test" });
  const pending = [...kills];
  const modelRequests: Seen[] = [];
  const toolCalls: Array<Seen & { key: string }> = [];
  let crash: (turn: number, at: Kill["at"]) => void = () => {};

  const toolServer = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (req) => {
    const { n, key } = await req.json() as { n: number; key: string };
    toolCalls.push({ turn: n, key, at: Date.now() });
    crash(n, "tool");
    return Response.json({ n: n * 10 });
  });
  await using llm = startMockOpenAI((request) => {
    const turn = turnOf(request);
    modelRequests.push({ turn, at: Date.now() });
    crash(turn, "model");
    // A little late, so that a process killed on this request never reads the answer.
    return { ...replyFor(request), delayMs: 50 };
  });
  const dir = await writeProject(project(llm.baseUrl, toolServer.addr.port));
  const client = await createExecutionClient({ nc, bus, project: await loadProject(dir) });
  let runtime: TestRuntime = startRuntimeProcess(nats);
  let engine = spawnEngineProcess(dir, nats.url, { instanceId: "e" });
  crash = (turn, at) => {
    const index = pending.findIndex((k) => k.turn === turn && k.at === at);
    if (index < 0) return;
    pending.splice(index, 1);
    if (victim === "runtime") {
      const dead = runtime;
      runtime = { stop: () => Promise.resolve(), kill: () => Promise.resolve() };
      void dead.kill().then(() => runtime = startRuntimeProcess(nats));
    } else {
      const dead = engine;
      dead.kill("SIGKILL");
      void dead.status.then(() => engine = spawnEngineProcess(dir, nats.url, { instanceId: "e" }));
    }
  };
  try {
    const { execId } = await client.trigger("loop", {});
    const state = await client.waitForEnd(execId, 240_000);
    assert.equal(state.status, "SUCCESS", `${label}: ${JSON.stringify(state.error)}`);
    assert.deepEqual(state.output, { total: EXPECTED_TOTAL }, label);
    assert.deepEqual(pending, [], `${label}: every kill happened`);
    const taskExecId = state.tasks[0].exec_id;

    const stored = await readStream(bus.js, STREAMS.events, `compozy.${execId}.agent.evts.*.*`);
    // The first stored event of a turn is the one that counts (a later duplicate changes nothing).
    const storedAt = (type: string, turn: number) =>
      stored.find((m) =>
        m.subject.endsWith(`.${type}`) &&
        (decodeBySubject(m.subject, m.data) as unknown as { turn: number }).turn === turn
      )?.time.getTime();
    for (let turn = 1; turn <= TOOL_TURNS + 1; turn++) {
      const replied = storedAt("model_replied", turn);
      assert.ok(replied !== undefined, `${label}: turn ${turn} is recorded`);
      const late = modelRequests.filter((r) => r.turn === turn && r.at > replied);
      assert.deepEqual(late, [], `${label}: turn ${turn} was asked again after its reply was stored`);
      if (turn > TOOL_TURNS) continue;
      const ended = storedAt("tool_call_ended", turn);
      assert.ok(ended !== undefined, `${label}: the tool call of turn ${turn} is recorded`);
      const calls = toolCalls.filter((c) => c.turn === turn);
      assert.deepEqual(calls.filter((c) => c.at > ended), [], `${label}: tool of turn ${turn} ran again`);
      assert.deepEqual(new Set(calls.map((c) => c.key)), new Set([`${taskExecId}:${turn}:0`]), label);
    }
    // Only a kill costs a request or a tool call: the one in flight where the process died (a kill of the
    // engine costs none, its runtime's loop goes on). The task's time-out is long enough that no attempt
    // times out on a loaded machine: a time-out aborts the request in flight and asks it again, which is
    // what the extra request once seen here was (6 s for six turns, the first tool call after a runtime
    // restart starting a cold sandbox).
    // A dead engine's task is re-run (a new attempt). A dead runtime's call is sent again within its attempt,
    // with the turns recorded meanwhile (engine/domain/task/runtime_call.ts), but that attempt may still time
    // out on a loaded machine (the new runtime waits out the dead one's turn claim, 15 s), so attempts are not
    // asserted for it: what matters is above, no recorded turn asked again.
    const attempts = state.tasks[0].attempts;
    if (victim === "engine") assert.ok(attempts > 1, `${label}: the task was re-run`);
    const lost = (at: Kill["at"]) => victim === "runtime" ? kills.filter((k) => k.at === at).length : 0;
    const perTurn = JSON.stringify(modelRequests.map((r) => r.turn));
    assert.ok(
      modelRequests.length <= TOOL_TURNS + 1 + lost("model"),
      `${label}: ${modelRequests.length} requests (turns ${perTurn}) in ${attempts} attempts`,
    );
    assert.ok(
      toolCalls.length <= TOOL_TURNS + lost("tool"),
      `${label}: ${toolCalls.length} tool calls (turns ${JSON.stringify(toolCalls.map((c) => c.turn))})`,
    );
  } finally {
    crash = () => {};
    try {
      engine.kill("SIGKILL");
    } catch { /* already gone */ }
    await engine.status;
    await runtime.stop();
    await toolServer.shutdown();
    await nc.close();
    await nats.stop();
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test({
  name: "durable agent loop: SIGKILL of the runtime at random turns asks no recorded turn again",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: () => runLoop("runtime", randomKills()),
});

Deno.test({
  name: "durable agent loop: SIGKILL of the engine at random turns asks no recorded turn again",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: () => runLoop("engine", randomKills()),
});
