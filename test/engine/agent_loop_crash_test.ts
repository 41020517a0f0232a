/**
 * The durable agent loop against real processes: a 6-turn loop (five tool calls, then the answer) on the
 * OpenAI-compatible loopback server, while a fault strikes at random turns (on a model request, or while a
 * tool call runs): the runtime process running the loop is SIGKILLed (alone, or one of two runtimes, whose
 * turn fence then has the other one or a new one take the loop over), the engine process is SIGKILLed, or the
 * nats-server is SIGKILLed and started again on the same store. The model server counts the requests of each
 * turn and the tool server each call: no turn is asked again once its reply is stored in the history, no tool
 * call runs again once its result is stored, and the task ends with the right output.
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
import { socketOwner } from "../support/socket_owner.ts";

const TOOL_TURNS = 5;
const EXPECTED_TOTAL = 10 + 20 + 30 + 40 + 50;
/** COMPOZY_AGENT_TURN_LEASE_MS of the runtimes in the tests that kill one. */
const RUNTIME_KILL_LEASE_MS = 5_000;

interface Kill {
  turn: number;
  /** On the model request of `turn`, or during its tool call. */
  at: "model" | "tool";
}

/** What is killed: a runtime process (of `runtimes` running), the engine process, or the nats-server. */
type Victim = "runtime" | "engine" | "nats";

/** `count` kill points at distinct random turns (a tool kill only where the turn has a tool call). */
function randomKills(count = 2): Kill[] {
  const kills: Kill[] = [];
  while (kills.length < count) {
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

async function runLoop(victim: Victim, kills: Kill[], runtimeCount = 1): Promise<void> {
  const label = `${victim} killed at ${JSON.stringify(kills)} (${runtimeCount} runtimes)`;
  const nats = await startTestNats();
  const nc = await connectNats(nats.url, { name: "agent-loop-crash-test" });
  await provisionJetStream(nc);
  const bus = new Bus(nc, { source: "test" });
  const pending = [...kills];
  const modelRequests: Seen[] = [];
  const toolCalls: Array<Seen & { key: string }> = [];
  /** Faults that could not strike as asked (no runtime held the connection): the test fails on them. */
  const misses: string[] = [];
  let crash: (turn: number, at: Kill["at"], clientPort: number, serverPort: number) => void = () => {};

  const toolServer = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (req, info) => {
    const { n, key } = await req.json() as { n: number; key: string };
    toolCalls.push({ turn: n, key, at: Date.now() });
    crash(n, "tool", info.remoteAddr.port, toolServer.addr.port);
    return Response.json({ n: n * 10 });
  });
  await using llm = startMockOpenAI((request) => {
    const turn = turnOf(request);
    modelRequests.push({ turn, at: Date.now() });
    crash(turn, "model", request.remotePort, Number(new URL(llm.url).port));
    // A little late, so that a process killed on this request never reads the answer.
    return { ...replyFor(request), delayMs: 50 };
  });
  const dir = await writeProject(project(llm.baseUrl, toolServer.addr.port));
  const client = await createExecutionClient({ nc, bus, project: await loadProject(dir) });
  // A killed runtime's claim on its turn stands for a lease, which the runtime that runs the loop next waits
  // out: 5 s rather than the default 15 s (the kill is what is tested, not the wait). A live runtime renews
  // its claim every third of it, so only one stalled for 5 s could lose its turn.
  const runtimeEnv: Record<string, string> = victim === "runtime"
    ? { COMPOZY_AGENT_TURN_LEASE_MS: String(RUNTIME_KILL_LEASE_MS) }
    : {};
  const startRuntime = () => startRuntimeProcess(nats, runtimeEnv);
  const runtimes: TestRuntime[] = Array.from({ length: runtimeCount }, startRuntime);
  const dead: Promise<void>[] = [];
  let engine = spawnEngineProcess(dir, nats.url, { instanceId: "e" });
  crash = (turn, at, clientPort, serverPort) => {
    const index = pending.findIndex((k) => k.turn === turn && k.at === at);
    if (index < 0) return;
    pending.splice(index, 1);
    if (victim === "runtime") {
      // The runtime asking (or, for a tool, whose sandbox calls): the one running the loop now.
      const owner = socketOwner(runtimes.map((r) => r.pid), clientPort, serverPort);
      const which = runtimes.findIndex((r) => r.pid === owner);
      if (which < 0) return void misses.push(`no runtime holds the connection of turn ${turn} (${at})`);
      dead.push(runtimes[which].kill());
      runtimes[which] = startRuntime();
    } else if (victim === "engine") {
      const killed = engine;
      killed.kill("SIGKILL");
      void killed.status.then(() => engine = spawnEngineProcess(dir, nats.url, { instanceId: "e" }));
    } else {
      dead.push(nats.restart({ crash: true, downMs: 1_000 }));
    }
  };
  try {
    const { execId } = await client.trigger("loop", {});
    const state = await client.waitForEnd(execId, 240_000);
    assert.deepEqual(misses, [], label);
    assert.equal(state.status, "SUCCESS", `${label}: ${JSON.stringify(state.error)}`);
    assert.deepEqual(state.output, { total: EXPECTED_TOTAL }, label);
    assert.deepEqual(pending, [], `${label}: every kill happened`);
    const taskExecId = state.tasks[0].exec_id;
    // Usage counts each turn once, however many attempts and runners it took (the mock's 10 in, 5 out a reply):
    // a replayed turn counts in the run that replays it, and the execution keeps its task's latest report.
    const sixTurns = { input_tokens: 60, output_tokens: 30, total_tokens: 90 };
    assert.deepEqual(state.tasks[0].usage, sixTurns, label);
    assert.deepEqual(state.usage, sixTurns, label);

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
    // Only a dead runtime costs a request or a tool call: the one in flight where the process died. A kill of
    // the engine costs none (its runtime's loop goes on), and neither does a NATS restart (the runner keeps
    // what it made and stores it once the server is back). The task's time-out is long enough that no attempt
    // times out on a loaded machine: a time-out aborts the request in flight and asks it again, which is
    // what the extra request once seen here was (6 s for six turns, the first tool call after a runtime
    // restart starting a cold sandbox).
    // A dead engine's task is re-run (a new attempt). A dead runtime's call is sent again within its attempt,
    // with the turns recorded meanwhile (engine/domain/task/runtime_call.ts), but that attempt may still time
    // out on a loaded machine (the new runtime waits out the dead one's turn claim, a lease), so attempts are
    // not asserted for it: what matters is above, no recorded turn asked again.
    const attempts = state.tasks[0].attempts;
    // Why each attempt but the last ended, for the messages below.
    const retried = (await client.events(execId))
      .filter((e) => e.type === "task.retry_scheduled")
      .map((e) => JSON.stringify((e.data as { error?: unknown }).error));
    if (victim === "engine") assert.ok(attempts > 1, `${label}: the task was re-run`);
    const lost = (at: Kill["at"]) => victim === "runtime" ? kills.filter((k) => k.at === at).length : 0;
    const perTurn = JSON.stringify(modelRequests.map((r) => r.turn));
    assert.ok(
      modelRequests.length <= TOOL_TURNS + 1 + lost("model"),
      `${label}: ${modelRequests.length} requests (turns ${perTurn}) in ${attempts} attempts (${retried})`,
    );
    assert.ok(
      toolCalls.length <= TOOL_TURNS + lost("tool"),
      `${label}: ${toolCalls.length} tool calls (turns ${
        JSON.stringify(toolCalls.map((c) => c.turn))
      }) (${retried})`,
    );
  } finally {
    crash = () => {};
    await Promise.allSettled(dead);
    try {
      engine.kill("SIGKILL");
    } catch { /* already gone */ }
    await engine.status;
    for (const runtime of runtimes) await runtime.stop();
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
  name: "durable agent loop: two runtimes, SIGKILL of the one running the loop at random turns",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: () => runLoop("runtime", randomKills(), 2),
});

Deno.test({
  name: "durable agent loop: SIGKILL of the engine at random turns asks no recorded turn again",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: () => runLoop("engine", randomKills()),
});

Deno.test({
  name: "durable agent loop: two runtimes, nats-server SIGKILLed and restarted at random turns",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: () => runLoop("nats", randomKills(), 2),
});
