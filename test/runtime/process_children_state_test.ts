/**
 * What Node's `process` holds (`process.versions`, `process.hrtime.bigint`) is put back after a call for a
 * tool that names `process` without importing `node:process` (break attempt brk41). Such a tool had only
 * `process`'s own properties put back, not the objects and functions under them: a call that replaced
 * `process.hrtime.bigint` or set `process.versions.node` changed what every later call of the warm
 * process, maybe another execution's, read from Node. Real sandbox processes; the calls run in the same
 * process (asserted by pid).
 */
import assert from "node:assert/strict";
import { ToolRunner } from "../../pkg/runtime/tool_runner.ts";
import { call, CONTEXT, ToolDir } from "./_helpers.ts";

Deno.test("what a call sets under Node's process is put back for a tool that names process", async () => {
  const dir = new ToolDir();
  const runner = new ToolRunner({ maxWarmPerKey: 1, startTimeoutMs: 60_000 });
  const path = dir.tool(
    "names_process",
    `export default (input: { step: number; secret: string }) => {
      if (input.step === 1) {
        (process.hrtime as any).bigint = () => input.secret;
        (process.versions as any).node = input.secret;
      }
      return { pid: Deno.pid, bigint: typeof process.hrtime.bigint(), node: process.versions.node };
    };`,
  );
  const run = async (step: number) => {
    const result = await runner.run(
      call(path, { step, secret: step === 1 ? "A's secret" : "B's secret" }, {
        timeoutMs: 60_000,
        context: { ...CONTEXT, workflowExecId: step === 1 ? "exec-A" : "exec-B" },
      }),
    );
    assert.ok(result.ok, JSON.stringify(result));
    return result.output as { pid: number; bigint: string; node: string };
  };
  try {
    const planted = await run(1);
    assert.deepEqual([planted.bigint, planted.node], ["string", "A's secret"], "the patch did not take");
    const next = await run(2);
    assert.equal(next.pid, planted.pid, "B did not run in A's process: the test proves nothing");
    // Before: "string" and "A's secret": A's function and A's value, in B's call.
    assert.equal(next.bigint, "bigint");
    assert.notEqual(next.node, "A's secret");
  } finally {
    await runner.close();
    dir.cleanup();
  }
});
