/**
 * A runtime too busy to read a call's output at once must not take the call's lag for a lost frame. The
 * frame check asks the host whether it received the call (`probe`); the answer queues behind every log
 * line the call wrote before it. Under load (6 `compozy dev` at once, each call printing 900 lines) the
 * answer was read after the check gave up: the sandbox was killed as stale and the call ran again in a
 * fresh one, its side effects twice and its log lines 1.8 times over.
 */
import assert from "node:assert/strict";
import { ToolRunner } from "../../pkg/runtime/tool_runner.ts";
import { call, ToolDir } from "./_helpers.ts";

Deno.test("a call whose log lines the runtime reads slowly runs once", async () => {
  const dir = new ToolDir();
  Deno.mkdirSync(`${dir.path}/out`);
  const runner = new ToolRunner();
  try {
    const tool = dir.tool(
      "chatty_once",
      `import fs from "node:fs";
       export default () => {
         fs.appendFileSync("out/runs", "run\\n");
         for (let i = 1; i <= 150; i++) console.log(i + " " + "x".repeat(1000));
         return { done: true };
       };`,
    );
    let lines = 0;
    const result = await runner.run(call(tool, null, {
      permissions: { read: ["out"], write: ["out"] },
      timeoutMs: 60_000,
      // 40 ms per line of 1 KB: the runtime reads the call's output (several pipe reads) 6 s behind the sandbox.
      onLog: () => {
        lines++;
        const until = performance.now() + 40;
        while (performance.now() < until) { /* a busy runtime */ }
      },
    }));
    assert.ok(result.ok, JSON.stringify(result).slice(0, 500));
    assert.equal(Deno.readTextFileSync(`${dir.path}/out/runs`), "run\n", "the tool ran more than once");
    assert.equal(lines, 150);
  } finally {
    await runner.close();
    dir.cleanup();
  }
});
