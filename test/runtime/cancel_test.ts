/**
 * A cancel of an execution stops the tool call it is running: end to end, with a real engine, the runtime
 * on its own NATS user, and real sandbox processes. The call's process is killed (it does not run to its
 * time-out), the call ends `tool_canceled`, and the pool still serves the next call of the tool.
 */
import assert from "node:assert/strict";
import { Bus } from "../../pkg/nats/mod.ts";
import type * as pb from "../../pkg/pb/mod.ts";
import { startRuntime } from "../../pkg/runtime/service.ts";
import { ToolRunner } from "../../pkg/runtime/tool_runner.ts";
import { startEngineHarness } from "../support/engine.ts";
import { call, eventually, processAlive, ToolDir } from "./_helpers.ts";

const PROJECT = {
  "compozy.yaml": `name: cancel\nversion: 0.1.0\nworkflows:\n  - source: ./workflows/nap.yaml\n`,
  "workflows/nap.yaml": `id: nap
version: 0.1.0
config:
  input: { type: object, properties: { ms: { type: number } }, required: [ms] }
tools:
  - id: sleeper
    execute: ./tools/sleeper.ts
    timeout: 2m
tasks:
  - id: nap
    use: tool(id=sleeper)
    with:
      ms: "{{ .workflow.input.ms }}"
    final: true
`,
  "workflows/tools/sleeper.ts": `export default async (input: { ms: number }) => {
  await new Promise((resolve) => setTimeout(resolve, input.ms));
  return { slept: input.ms };
};
`,
};

Deno.test({
  name: "canceling an execution kills the sandbox process of its running tool call",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const h = await startEngineHarness(PROJECT);
    const nc = await h.nats.connectAs("runtime");
    const runner = new ToolRunner();
    const runtime = startRuntime({ nc, bus: new Bus(nc, { source: "runtime" }), runner });
    const failures: pb.ToolExecutionFailed[] = [];
    const watch = h.bus.subscribe(
      "compozy.*.tool.evts.*.failed",
      (m) => failures.push(m as pb.ToolExecutionFailed),
    );
    try {
      const { execId } = await h.engine.client.trigger("nap", { ms: 60_000 });
      assert.ok(await eventually(() => runner.stats().busy === 1, 30_000), "the tool call never started");
      const [pid] = runner.stats().pids;
      assert.ok(processAlive(pid));

      await h.engine.client.cancel(execId, "no longer needed");
      const ended = await h.engine.client.waitForEnd(execId, 30_000);
      assert.equal(ended.status, "CANCELED");
      assert.ok(await eventually(() => !processAlive(pid), 30_000), `sandbox ${pid} outlived the cancel`);
      assert.ok(await eventually(() => failures.length === 1, 30_000), "the call never ended");
      assert.equal(failures[0].workflow?.execId, execId);
      assert.equal(failures[0].error?.code, "tool_canceled");
      assert.match(failures[0].error?.message ?? "", /was canceled/);

      const next = await h.engine.client.trigger("nap", { ms: 1 });
      const done = await h.engine.client.waitForEnd(next.execId, 30_000);
      assert.equal(done.status, "SUCCESS", JSON.stringify(done.error));
      assert.deepEqual(done.output, { slept: 1 });
      assert.ok(!runner.stats().pids.includes(pid));
    } finally {
      watch.unsubscribe();
      await runtime.stop();
      await nc.close();
      await h.close();
    }
  },
});

Deno.test("a call's signal stops it running, waiting for a sandbox, or before it starts", async () => {
  const dir = new ToolDir();
  const runner = new ToolRunner({ maxProcesses: 1 });
  const sleeper = dir.tool("sleeper", PROJECT["workflows/tools/sleeper.ts"]);
  try {
    const running = new AbortController();
    const first = runner.run(call(sleeper, { ms: 60_000 }, { timeoutMs: 120_000, signal: running.signal }));
    assert.ok(await eventually(() => runner.stats().busy === 1, 30_000));
    const [pid] = runner.stats().pids;
    // The only process is busy: this call waits for one, then gives up waiting when canceled.
    const waiting = new AbortController();
    const second = runner.run(call(sleeper, { ms: 1 }, { timeoutMs: 120_000, signal: waiting.signal }));
    assert.ok(await eventually(() => runner.stats().waiting === 1));
    waiting.abort(new Error("not needed"));
    const gaveUp = await second;
    assert.equal(!gaveUp.ok && gaveUp.failure.code, "tool_canceled");
    assert.equal(runner.stats().waiting, 0);
    assert.ok(processAlive(pid), "canceling a waiting call touches no process");

    running.abort(new Error("stop"));
    const stopped = await first;
    assert.equal(!stopped.ok && stopped.failure.code, "tool_canceled");
    assert.match(!stopped.ok ? stopped.failure.message : "", /canceled: stop/);
    assert.equal(!stopped.ok && stopped.failure.retryable, false);
    assert.ok(await eventually(() => !processAlive(pid)), `sandbox ${pid} outlived the cancel`);

    const before = runner.stats().spawned;
    const early = await runner.run(
      call(sleeper, { ms: 1 }, { signal: AbortSignal.abort(new Error("gone")) }),
    );
    assert.equal(!early.ok && early.failure.code, "tool_canceled");
    assert.equal(runner.stats().spawned - before <= 1, true, "only the pool's replacement was started");
    const after = await runner.run(call(sleeper, { ms: 1 }));
    assert.deepEqual(after.ok && after.output, { slept: 1 });
  } finally {
    await runner.close();
    dir.cleanup();
  }
});
