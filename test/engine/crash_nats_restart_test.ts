/**
 * Outside review E3: nats-server SIGKILLed and restarted on the same store and port while tool calls run. The
 * engine reconnects; a driver that was given up meanwhile must not go on sending its call while the same
 * engine takes the execution over and runs the task again: no two calls of one task may run at once, a
 * re-run reports the next attempt, and every call that went out has its task.started in the history.
 */
import assert from "node:assert/strict";
import { createExecutionClient } from "../../engine/mod.ts";
import { loadProject } from "../../engine/domain/project/mod.ts";
import { Bus, connectNats, provisionJetStream } from "../../pkg/nats/mod.ts";
import { scriptedRuntime, writeProject } from "../support/engine.ts";
import { spawnEngineProcess } from "../support/engine_process.ts";
import { startTestNats } from "../support/nats.ts";

const RUNS = 4;

const WORKFLOW = `id: seqlong
tools:
  - id: rec
    execute: ./t.ts
tasks:
  - { id: t1, use: tool(id=rec), with: { ms: 300 } }
  - id: p
    type: parallel
    tasks:
      - { id: s2, type: sleep, duration: 1s }
      - { id: t3, use: tool(id=rec), with: { ms: 1500 } }
  - { id: t4, use: tool(id=rec), with: { ms: 300 }, final: true }
`;

interface Call {
  execId: string;
  taskExecId: string;
  taskId: string;
  attempt: number;
  start: number;
  end?: number;
}

Deno.test({
  name:
    "E3: after a nats-server SIGKILL and restart, no task's call runs twice at once or without its task.started",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const dir = await writeProject({
      "compozy.yaml": "name: e3\nworkflows:\n  - source: ./wf.yaml\n",
      "wf.yaml": WORKFLOW,
      "t.ts": "export default (input: unknown) => input;\n",
    });
    const nats = await startTestNats();
    const nc = await connectNats(nats.url, { name: "e3-test" });
    await provisionJetStream(nc);
    const bus = new Bus(nc, { source: "test" });
    const calls: Call[] = [];
    const runtime = scriptedRuntime(bus, {
      rec: async (input, call) => {
        const record: Call = {
          execId: call.workflow!.execId,
          taskExecId: call.task!.execId,
          taskId: call.task!.id,
          attempt: call.attempt,
          start: Date.now(),
        };
        calls.push(record);
        await new Promise((r) => setTimeout(r, Number(input.ms ?? 0)));
        record.end = Date.now();
        return { attempt: call.attempt };
      },
    });
    const client = await createExecutionClient({ nc, bus, project: await loadProject(dir) });
    const engine = spawnEngineProcess(dir, nats.url, { instanceId: "e3" });
    try {
      const ids: string[] = [];
      for (let i = 0; i < RUNS; i++) ids.push((await client.trigger("seqlong", {})).execId);
      // Every run's t3 is under way (t1 ran): the server dies while the calls run and sleeps are due.
      const deadline = Date.now() + 60_000;
      while (calls.filter((c) => c.taskId === "p/t3").length < RUNS && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 20));
      }
      await new Promise((r) => setTimeout(r, 200));
      await nats.restart({ crash: true, downMs: 2_500 });
      for (const id of ids) {
        const state = await client.waitForEnd(id, 90_000);
        assert.equal(state.status, "SUCCESS", `${id}: ${JSON.stringify(state.error)}`);
      }
      const problems: string[] = [];
      for (const id of ids) {
        const started = new Set<string>();
        for (const event of await client.events(id)) {
          if (event.type !== "task.started") continue;
          const data = event.data as { task: { execId: string }; attempt: number };
          started.add(`${data.task.execId}#${data.attempt}`);
        }
        const byTask = Map.groupBy(calls.filter((c) => c.execId === id), (c) => c.taskExecId);
        for (const [taskExecId, runs] of byTask) {
          const what = `${id} ${runs[0].taskId}`;
          runs.forEach((run, i) => {
            if (!started.has(`${taskExecId}#${run.attempt}`)) {
              problems.push(`${what}: a call of attempt ${run.attempt} has no task.started`);
            }
            if (i > 0 && run.attempt <= runs[i - 1].attempt) {
              problems.push(`${what}: a re-run reported attempt ${run.attempt} after ${runs[i - 1].attempt}`);
            }
            for (const other of runs.slice(0, i)) {
              if (other.end === undefined || other.end > run.start) {
                problems.push(`${what}: attempts ${other.attempt} and ${run.attempt} ran at once`);
              }
            }
          });
        }
      }
      console.log(`${calls.length} tool calls for ${RUNS * 3} tasks`);
      assert.deepEqual(problems, []);
    } finally {
      try {
        engine.kill("SIGKILL");
      } catch { /* already gone */ }
      await engine.status;
      runtime.stop();
      await nc.close();
      await nats.stop();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
