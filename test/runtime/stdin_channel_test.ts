/**
 * Node's `process.stdin` read the sandbox process's fd 0, the call channel: a `data` listener armed by one
 * call took the frames of the tool's later calls, and each of those ran again in a fresh process (~250 ms
 * plus a cold start). Now `process.stdin` is an empty stream, like `Deno.stdin`. Real sandbox processes.
 * (Node's `fs` reads of fd 0 by number still can: docs/runtime-sandbox.md, "Call frames are encrypted".)
 */
import assert from "node:assert/strict";
import { ToolRunner } from "../../pkg/runtime/tool_runner.ts";
import { call, ToolDir } from "./_helpers.ts";

Deno.test("a process.stdin listener armed by one call takes no later call's frame", async () => {
  const dir = new ToolDir();
  const runner = new ToolRunner({ maxWarmPerKey: 1, startTimeoutMs: 60_000 });
  try {
    const tool = dir.tool(
      "stdin",
      `import process from "node:process";
       let armed = false;
       let ended = false;
       let bytes = 0;
       export default () => {
         if (!armed) {
           armed = true;
           process.stdin.on("data", (b: Uint8Array) => { bytes += b.length; });
           process.stdin.on("end", () => { ended = true; });
         }
         return { pid: Deno.pid, bytes, ended };
       };`,
    );
    const outputs: Array<{ pid: number; bytes: number; ended: boolean }> = [];
    for (let n = 0; n < 10; n++) {
      const result = await runner.run(call(tool, n, { timeoutMs: 30_000 }));
      assert.ok(result.ok, JSON.stringify(result));
      outputs.push(result.output as { pid: number; bytes: number; ended: boolean });
    }
    // Before: the calls after the first ran in new processes (their frames were taken), bytes > 0.
    assert.equal(new Set(outputs.map((o) => o.pid)).size, 1, JSON.stringify(outputs));
    assert.ok(outputs.every((o) => o.bytes === 0), JSON.stringify(outputs));
    assert.ok(outputs.at(-1)!.ended, "the stream did not end");
  } finally {
    await runner.close();
    dir.cleanup();
  }
});
