/**
 * Issue 9, defect 8: a task re-run after its engine was SIGKILLed reports the next attempt, with the same
 * task execution id (a tool keyed on `ctx.taskExecId` needs the true attempt count).
 */
import assert from "node:assert/strict";
import { createExecutionClient } from "../../engine/mod.ts";
import { loadProject } from "../../engine/domain/project/mod.ts";
import { Bus, connectNats, provisionJetStream } from "../../pkg/nats/mod.ts";
import { scriptedRuntime, writeProject } from "../support/engine.ts";
import { spawnEngineProcess } from "../support/engine_process.ts";
import { startTestNats } from "../support/nats.ts";

function spawnEngine(dir: string, natsUrl: string): Deno.ChildProcess {
  return spawnEngineProcess(dir, natsUrl, { instanceId: "e" });
}

Deno.test({
  name: "8: a re-run after a crash reports the next attempt with the same task execution id",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const dir = await writeProject({
      "compozy.yaml": "name: crash\nworkflows:\n  - source: ./wf.yaml\n",
      "wf.yaml":
        "id: main\ntools:\n  - id: work\n    execute: ./t.ts\ntasks:\n  - id: a\n    use: tool(id=work)\n",
      "t.ts": "export default (input: unknown) => input;\n",
    });
    const nats = await startTestNats();
    const nc = await connectNats(nats.url, { name: "crash-test" });
    await provisionJetStream(nc);
    const bus = new Bus(nc, { source: "test" });
    const calls: Array<{ attempt: number; taskExecId: string }> = [];
    let firstCall!: () => void;
    const firstCalled = new Promise<void>((r) => firstCall = r);
    const runtime = scriptedRuntime(bus, {
      work: async (_input, call) => {
        calls.push({ attempt: call.attempt, taskExecId: call.task!.execId });
        if (calls.length === 1) {
          firstCall();
          await new Promise(() => {}); // The engine dies while this call runs.
        }
        return { attempt: call.attempt };
      },
    });
    const client = await createExecutionClient({ nc, bus, project: await loadProject(dir) });
    let engine = spawnEngine(dir, nats.url);
    try {
      const { execId } = await client.trigger("main", {});
      await firstCalled;
      engine.kill("SIGKILL");
      await engine.status;
      engine = spawnEngine(dir, nats.url);
      const state = await client.waitForEnd(execId, 30_000);
      assert.equal(state.status, "SUCCESS", JSON.stringify(state.error));
      assert.equal(calls.length, 2);
      assert.equal(calls[1].taskExecId, calls[0].taskExecId);
      assert.deepEqual(calls.map((c) => c.attempt), [1, 2]);
      assert.deepEqual(state.output, { attempt: 2 });
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
