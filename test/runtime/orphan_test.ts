/**
 * No sandbox outlives its runtime: when the runtime process dies (SIGKILL, SIGTERM, SIGINT), every
 * sandbox exits with it, including one whose tool is stuck in a CPU loop. And `close()` kills them all.
 */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { ToolRunner } from "../../pkg/runtime/tool_runner.ts";
import { call, eventually, processAlive, ToolDir } from "./_helpers.ts";

const HOST = fileURLToPath(new URL("./_runner_host.ts", import.meta.url));

async function startHost(dir: string): Promise<{ host: Deno.ChildProcess; pids: number[] }> {
  const host = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", HOST, dir],
    stdin: "null",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const reader = host.stdout.getReader();
  const decoder = new TextDecoder();
  let text = "";
  try {
    while (!text.includes("\n")) {
      const { value, done } = await reader.read();
      if (done) throw new Error(`runner host exited before printing its sandboxes: ${text}`);
      text += decoder.decode(value, { stream: true });
    }
  } catch (e) {
    host.kill("SIGKILL");
    await host.status;
    throw e;
  } finally {
    await reader.cancel();
  }
  return { host, pids: JSON.parse(text) as number[] };
}

Deno.test("sandboxes die with their runtime", async (t) => {
  const dir = new ToolDir();
  try {
    for (const signal of ["SIGKILL", "SIGTERM", "SIGINT"] as const) {
      await t.step(`runtime killed with ${signal}: idle and busy sandboxes exit`, async () => {
        const { host, pids } = await startHost(dir.path);
        assert.equal(pids.length, 2);
        assert.ok(pids.every(processAlive));
        host.kill(signal);
        await host.status;
        assert.ok(
          await eventually(() => !pids.some(processAlive), 3_000),
          `still alive: ${pids.filter(processAlive)}`,
        );
      });
    }
  } finally {
    dir.cleanup();
  }
});

Deno.test("close() kills every sandbox and fails the calls in flight", async () => {
  const dir = new ToolDir();
  const runner = new ToolRunner();
  try {
    const busy = dir.tool("busy", `export default () => { for (;;) {} };`);
    const idle = dir.tool("idle", `export default () => 1;`);
    await runner.warm(idle);
    const inFlight = runner.run(call(busy, null, { timeoutMs: 60_000 }));
    assert.ok(await eventually(() => runner.stats().busy === 1));
    const pids = runner.stats().pids;
    await runner.close();
    const result = await inFlight;
    assert.ok(!result.ok);
    assert.equal(result.failure.code, "tool_crashed");
    assert.ok(!pids.some(processAlive));
    assert.equal(runner.stats().processes, 0);
  } finally {
    await runner.close();
    dir.cleanup();
  }
});
