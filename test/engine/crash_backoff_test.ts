/**
 * A crash during a retry back-off does not cut it short: the engine that takes the execution over waits the
 * rest of the recorded delay before the next attempt (outside review F7, /work/wt/engbreak/FINDINGS.md).
 * Real engine processes (SIGKILLed), real nats-server. The assertion is on recorded times, with the whole
 * delay as margin: attempt 2 must not start before the back-off recorded in `task.retry_scheduled` is over.
 */
import assert from "node:assert/strict";
import { createExecutionClient } from "../../engine/mod.ts";
import { loadProject } from "../../engine/domain/project/mod.ts";
import { Bus, connectNats, provisionJetStream } from "../../pkg/nats/mod.ts";
import { scriptedRuntime, writeProject } from "../support/engine.ts";
import { spawnEngineProcess } from "../support/engine_process.ts";
import { startTestNats } from "../support/nats.ts";

Deno.test({
  name: "F7: a retry whose engine died during the back-off runs only once the back-off is over",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const dir = await writeProject({
      "compozy.yaml": "name: crash\nworkflows:\n  - source: ./wf.yaml\n",
      "wf.yaml":
        "id: main\ntools:\n  - id: work\n    execute: ./t.ts\ntasks:\n  - id: a\n    use: tool(id=work)\n" +
        "    retry: { max_attempts: 2, backoff: { initial: 16s, max: 16s, factor: 1 } }\n",
      "t.ts": "export default (input: unknown) => input;\n",
    });
    const nats = await startTestNats();
    const nc = await connectNats(nats.url, { name: "crash-backoff-test" });
    await provisionJetStream(nc);
    const bus = new Bus(nc, { source: "test" });
    const calls: number[] = [];
    const runtime = scriptedRuntime(bus, {
      work: (_input, call) => {
        calls.push(call.attempt);
        if (call.attempt === 1) throw Object.assign(new Error("first attempt fails"), { retryable: true });
        return { attempt: call.attempt };
      },
    });
    const client = await createExecutionClient({ nc, bus, project: await loadProject(dir) });
    let engine = spawnEngineProcess(dir, nats.url, { instanceId: "e" });
    try {
      const { execId } = await client.trigger("main", {});
      const deadline = Date.now() + 30_000;
      let scheduled;
      while (!(scheduled = (await client.events(execId)).find((e) => e.type === "task.retry_scheduled"))) {
        assert.ok(Date.now() < deadline, "no retry scheduled");
        await new Promise((r) => setTimeout(r, 50));
      }
      engine.kill("SIGKILL");
      await engine.status;
      engine = spawnEngineProcess(dir, nats.url, { instanceId: "e2" });
      const state = await client.waitForEnd(execId, 60_000);
      assert.equal(state.status, "SUCCESS", JSON.stringify(state.error));
      assert.deepEqual(calls, [1, 2]);
      const events = await client.events(execId);
      const started2 = events.find((e) =>
        e.type === "task.started" && (e.data as { attempt?: number }).attempt === 2
      );
      assert.ok(started2, events.map((e) => e.type).join(", "));
      const delayMs = Number((scheduled.data as { delayMs: string | number }).delayMs);
      const due = Date.parse(scheduled.time) + delayMs;
      assert.ok(
        Date.parse(started2.time) >= due,
        `attempt 2 started at ${started2.time}, before the back-off ended at ${new Date(due).toISOString()}`,
      );
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
