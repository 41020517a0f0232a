/**
 * The fourth red team (an outside review, /work/wt/redteam4/FINDINGS.md), with real sandbox processes: each
 * hole it found in the runtime, as it reproduced it, and what the runtime does now. F1 (the API reached by a
 * `net: true` tool) is in test/e2e/redteam4_api_test.ts.
 */
import assert from "node:assert/strict";
import { ToolRunner } from "../../pkg/runtime/tool_runner.ts";
import { call, eventually, ToolDir } from "./_helpers.ts";

const SLEEPER = `export default async (ms: number) => {
  await new Promise((r) => setTimeout(r, ms));
  return ms;
};`;

Deno.test("red team 4 F2: a tool whose calls all hang does not starve another tool of sandboxes", async () => {
  const dir = new ToolDir();
  const runner = new ToolRunner({ maxProcesses: 4, maxWarmPerKey: 1 });
  try {
    const sleeper = dir.tool("sleeper", SLEEPER);
    const victim = dir.tool("victim", `export default () => "answered";`);
    // A collection of 16 items with max_workers 16: each call awaits a timer, no CPU, no memory, no grant.
    const hog = Array.from({ length: 16 }, () => runner.run(call(sleeper, 60_000, { timeoutMs: 120_000 })));
    assert.ok(
      await eventually(() => runner.stats().busy === 4 && runner.stats().waiting === 12, 60_000),
      `the sleepers hold every process: ${JSON.stringify(runner.stats())}`,
    );
    // Before: the victim waited behind the 12 queued sleepers and failed tool_timeout ("No sandbox ... was
    // ready before the call's time limit").
    const result = await runner.run(call(victim, {}, { timeoutMs: 30_000 }));
    assert.ok(result.ok, `the other tool's call failed: ${JSON.stringify(result)}`);
    assert.equal(result.output, "answered");
    assert.equal(runner.stats().waiting, 12, "the sleepers' calls still wait for their own processes");
    await runner.close();
    for (const outcome of await Promise.all(hog)) assert.ok(!outcome.ok);
  } finally {
    await runner.close();
    dir.cleanup();
  }
});

Deno.test("red team 4 F2: waiting calls are served round robin by tool, not oldest first", async () => {
  const dir = new ToolDir();
  // No reserve: every call must wait for the one process.
  const runner = new ToolRunner({ maxProcesses: 1, reserveProcesses: 0 });
  try {
    const a = dir.tool("a", SLEEPER);
    const b = dir.tool("b", SLEEPER);
    const order: string[] = [];
    const run = (name: string, tool: string, ms: number) =>
      runner.run(call(tool, ms, { timeoutMs: 120_000 })).then((r) => {
        assert.ok(r.ok, `${name}: ${JSON.stringify(r)}`);
        order.push(name);
      });
    const first = run("a1", a, 1_000);
    assert.ok(await eventually(() => runner.stats().busy === 1, 60_000));
    const queued = [run("a2", a, 0), run("a3", a, 0), run("a4", a, 0)];
    assert.ok(await eventually(() => runner.stats().waiting === 3));
    const other = run("b", b, 0);
    assert.ok(await eventually(() => runner.stats().waiting === 4));
    await Promise.all([first, ...queued, other]);
    // Before: a2, a3 and a4 (older) went first; now b is the next tool in turn once a1 ends.
    assert.deepEqual(order.slice(0, 2), ["a1", "b"], order.join(", "));
  } finally {
    await runner.close();
    dir.cleanup();
  }
});
