/**
 * A folder granted for reading that holds a named pipe is refused at the sandbox's start, as one holding a
 * symlink that leads out of it (link_scan.ts). Opening a FIFO no one writes blocks one of Deno's file threads
 * until a writer comes: a tool that left 600 such opens pending as its call returned had its warm process's
 * next calls wait behind them until their time limit (outside break attempts brk35, brk36). A tool cannot
 * make a FIFO, so refusing the grant that reaches one closes it.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { ToolRunner } from "../../pkg/runtime/tool_runner.ts";
import { call, ToolDir } from "./_helpers.ts";

async function mkfifo(path: string): Promise<void> {
  const made = await new Deno.Command("mkfifo", { args: [path] }).output();
  assert.ok(made.success, new TextDecoder().decode(made.stderr));
}

Deno.test("a read grant of a folder holding a named pipe is refused, naming it; without it the same grant runs", async () => {
  const dir = new ToolDir();
  const runner = new ToolRunner();
  const reader = dir.tool("reader", `export default (p: string) => Deno.readTextFile(p);`);
  try {
    Deno.mkdirSync(join(dir.path, "data/deep"), { recursive: true });
    Deno.writeTextFileSync(join(dir.path, "data/ok.txt"), "ok");
    await mkfifo(join(dir.path, "data/deep/pipe"));
    const permissions = { read: ["./data"] };
    const refused = await runner.run(call(reader, join(dir.path, "data/ok.txt"), { permissions }));
    assert.equal(refused.ok ? "ran" : refused.failure.code, "tool_permission_denied");
    assert.match(!refused.ok ? refused.failure.message : "", /deep\/pipe inside it is a named pipe/);

    Deno.removeSync(join(dir.path, "data/deep/pipe"));
    const ran = await runner.run(call(reader, join(dir.path, "data/ok.txt"), { permissions }));
    assert.deepEqual(ran.ok ? ran.output : ran.failure, "ok");
  } finally {
    await runner.close();
    dir.cleanup();
  }
});
