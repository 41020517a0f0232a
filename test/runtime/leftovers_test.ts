/**
 * What the last round left open (issue 10): empty log lines that cost the runtime a frame each, and
 * what a call leaves behind in its warm sandbox. Real sandbox processes; the sandbox's own I/O counters in
 * /proc show what crossed to the runtime.
 */
import assert from "node:assert/strict";
import { ToolRunner } from "../../pkg/runtime/tool_runner.ts";
import { call, ToolDir } from "./_helpers.ts";

/** Bytes the process has written (to its stdout, the frames to the runtime: it has no other writes). */
function bytesWritten(pid: number): number {
  const io = Deno.readTextFileSync(`/proc/${pid}/io`);
  return Number(/^wchar: (\d+)$/m.exec(io)![1]);
}

Deno.test("empty log lines are charged against the call's log budget", async () => {
  const dir = new ToolDir();
  const runner = new ToolRunner({ maxLogBytes: 1024, maxWarmPerKey: 1 });
  try {
    const tool = dir.tool(
      "empty_lines",
      `export default (n: number, ctx: any) => {
         for (let i = 0; i < n; i++) { console.log(""); ctx.log.info(""); Deno.stdout.writeSync(new Uint8Array(0)); }
         return "done";
       };`,
    );
    const lines: string[] = [];
    const first = await runner.run(call(tool, 1, { onLog: (e) => lines.push(e.message) }));
    assert.deepEqual(first.ok && first.output, "done");
    const [pid] = runner.stats().pids;
    const before = bytesWritten(pid);
    const flood = await runner.run(call(tool, 100_000, { onLog: (e) => lines.push(e.message) }));
    assert.deepEqual(flood.ok && flood.output, "done");
    assert.deepEqual(runner.stats().pids, [pid], "the same warm process ran both calls");
    // 300,000 empty lines were one frame (~30 bytes) each: 9 MB. Charged a byte each, 1 KiB of budget
    // lets ~1,000 through.
    const written = bytesWritten(pid) - before;
    assert.ok(written < 64 * 1024, `the sandbox sent ${written} bytes of frames for empty lines`);
    assert.deepEqual(lines.filter((l) => !/log output over/.test(l)), []);
  } finally {
    await runner.close();
    dir.cleanup();
  }
});
