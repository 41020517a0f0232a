/**
 * The durability promise against real processes: an engine process is SIGKILLed at random moments (or
 * nats-server restarted) while 50 runs of a 10-task workflow are in flight. Every run must end SUCCESS, and
 * no tool call for a task may start after that task's success was recorded.
 */
import assert from "node:assert/strict";
import { jetstreamManager } from "@nats-io/jetstream";
import { createExecutionClient } from "../../engine/mod.ts";
import { loadProject } from "../../engine/domain/project/mod.ts";
import { Bus, connectNats, provisionJetStream, STREAMS } from "../../pkg/nats/mod.ts";
import { scriptedRuntime, writeProject } from "../support/engine.ts";
import { spawnEngineProcess } from "../support/engine_process.ts";
import { startTestNats } from "../support/nats.ts";

const RUNS = 50;
const TASKS = 10;

function tenTaskProject(): Record<string, string> {
  const tasks = Array.from(
    { length: TASKS },
    (_, i) =>
      `  - id: step-${i}\n    use: tool(id=work)\n    with: { n: ${i}, prev: "{{ .workflow.input.seed }}" }\n`,
  ).join("");
  return {
    "compozy.yaml": "name: durable\nworkflows:\n  - source: ./wf.yaml\n",
    "wf.yaml": `id: ten\ntools:\n  - id: work\n    execute: ./t.ts\ntasks:\n${tasks}`,
    "t.ts": "export default (input: unknown) => input;\n",
  };
}

function spawnEngine(dir: string, natsUrl: string, instanceId: string): Deno.ChildProcess {
  return spawnEngineProcess(dir, natsUrl, { instanceId });
}

async function kill(child: Deno.ChildProcess): Promise<void> {
  try {
    child.kill("SIGKILL");
  } catch { /* already gone */ }
  await child.status;
}

interface Fixture {
  calls: Array<{ execId: string; taskId: string; at: number }>;
  client: Awaited<ReturnType<typeof createExecutionClient>>;
  nats: Awaited<ReturnType<typeof startTestNats>>;
  bus: Bus;
  dir: string;
  close(): Promise<void>;
}

async function fixture(leaseTtlMs = 15_000): Promise<Fixture> {
  const dir = await writeProject(tenTaskProject());
  const nats = await startTestNats();
  const nc = await connectNats(nats.url, { name: "durability-test" });
  await provisionJetStream(nc, { ttlMs: { compozy_leases: leaseTtlMs } });
  const bus = new Bus(nc, { source: "test" });
  const calls: Fixture["calls"] = [];
  const runtime = scriptedRuntime(bus, {
    work: async (input, call) => {
      calls.push({ execId: call.workflow!.execId, taskId: call.task!.id, at: Date.now() });
      await new Promise((r) => setTimeout(r, 20 + Math.random() * 40));
      return input;
    },
  });
  const client = await createExecutionClient({ nc, bus, project: await loadProject(dir) });
  return {
    calls,
    client,
    nats,
    bus,
    dir,
    async close() {
      runtime.stop();
      await nc.close();
      await nats.stop();
      await Deno.remove(dir, { recursive: true });
    },
  };
}

async function startRuns(f: Fixture): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < RUNS; i++) ids.push((await f.client.trigger("ten", { seed: i })).execId);
  return ids;
}

async function assertAllSucceededOnce(f: Fixture, ids: string[]): Promise<void> {
  for (const id of ids) {
    const state = await f.client.waitForEnd(id, 60_000);
    assert.equal(state.status, "SUCCESS", `execution ${id} ended ${state.status}`);
    assert.equal(state.tasks.length, TASKS);
  }
  // When was each task's success stored? No tool call for that task may start after it.
  const jsm = await jetstreamManager(f.bus.nc);
  const recordedAt = new Map<string, number>();
  for (const id of ids) {
    for (const event of await f.client.events(id)) {
      if (event.type !== "task.success") continue;
      const stored = await jsm.streams.getMessage(STREAMS.events, { seq: event.seq });
      const taskId = (event.data as { task: { id: string } }).task.id;
      recordedAt.set(
        `${id}/${taskId}`,
        stored!.timestamp ? new Date(stored!.timestamp).getTime() : Date.now(),
      );
    }
  }
  assert.equal(recordedAt.size, RUNS * TASKS);
  const late = f.calls.filter((c) => c.at > recordedAt.get(`${c.execId}/${c.taskId}`)!);
  assert.deepEqual(late, [], "a tool ran again after its success was recorded");
  const reruns = f.calls.length - RUNS * TASKS;
  console.log(
    `${f.calls.length} tool calls for ${RUNS * TASKS} tasks (${reruns} re-runs of unrecorded steps)`,
  );
}

Deno.test({
  name: "durability: SIGKILL of the engine at random moments",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const f = await fixture();
    let engine = spawnEngine(f.dir, f.nats.url, "engine-a");
    try {
      const ids = await startRuns(f);
      for (let kills = 0; kills < 6; kills++) {
        await new Promise((r) => setTimeout(r, 100 + Math.random() * 400));
        await kill(engine);
        engine = spawnEngine(f.dir, f.nats.url, "engine-a");
      }
      await assertAllSucceededOnce(f, ids);
    } finally {
      await kill(engine);
      await f.close();
    }
  },
});

Deno.test({
  name: "durability: nats-server SIGKILLed and restarted mid-run",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const f = await fixture();
    const engine = spawnEngine(f.dir, f.nats.url, "engine-a");
    try {
      const ids = await startRuns(f);
      await new Promise((r) => setTimeout(r, 150));
      // SIGKILL, then the same port and store: the engine sees its connection drop, JetStream answer "not
      // enabled" while it starts, and requests whose replies were lost.
      await f.nats.restart({ crash: true, downMs: 300 });
      await assertAllSucceededOnce(f, ids);
    } finally {
      await kill(engine);
      await f.close();
    }
  },
});

Deno.test({
  name: "durability: two engines share the work; SIGKILL one and the other finishes everything",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const f = await fixture(3_000);
    const a = spawnEngine(f.dir, f.nats.url, "engine-a");
    const b = spawnEngine(f.dir, f.nats.url, "engine-b");
    try {
      const ids = await startRuns(f);
      await new Promise((r) => setTimeout(r, 150));
      await kill(a);
      await assertAllSucceededOnce(f, ids);
    } finally {
      await kill(a);
      await kill(b);
      await f.close();
    }
  },
});
