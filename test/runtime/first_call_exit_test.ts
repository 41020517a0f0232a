/**
 * An exit in a process's first call is that call's, whichever code makes it (outside break attempt brk35). An
 * exit from another context than the running call's was blamed on work an ended call left behind, and the
 * call ran again in a fresh process; but in a first call no call has ended: a reaction the module's load left
 * (set off by the call) exited there every time, so one call ran three times, each with its whole time limit,
 * in three processes, and failed saying no sandbox was fit for it. Real sandbox processes.
 */
import assert from "node:assert/strict";
import { ToolRunner } from "../../pkg/runtime/tool_runner.ts";
import { call, ToolDir } from "./_helpers.ts";

Deno.test("brk35: an exit by the module's load code during a first call fails that call once, in one process", async () => {
  const dir = new ToolDir();
  const runner = new ToolRunner({ maxWarmPerKey: 1, startTimeoutMs: 60_000 });
  try {
    const tool = dir.tool(
      "load_exit",
      `let setOff: () => void = () => {};
       // A reaction of the load's context, set off by the call.
       new Promise<void>((resolve) => (setOff = resolve)).then(() => Deno.exit(3));
       export default async () => {
         setOff();
         await new Promise((r) => setTimeout(r, 5_000));
         return "not reached";
       };`,
    );
    const result = await runner.run(call(tool, {}, { timeoutMs: 30_000 }));
    assert.ok(!result.ok, JSON.stringify(result));
    assert.equal(result.failure.code, "tool_crashed");
    // Before: "found no sandbox fit for the call: work left by an ended call called exit", after 3 runs.
    assert.match(result.failure.message, /called exit\(3\)/);
    assert.equal(runner.stats().spawned, 1);
  } finally {
    await runner.close();
    dir.cleanup();
  }
});
