/**
 * Files a call opens end with it (issue 10, follow-up of net_leftovers_test.ts): a `Deno.open` file stayed
 * open in the warm process after the call returned, so a later call of the same tool, for another execution,
 * read the file the earlier one opened, and every leak held a descriptor for good. Each tool keeps what its
 * first call opened in a module variable and tries it in the second call. A file the module's load opened
 * stays open for every call. (File watchers are refused altogether: file_watch_test.ts.) Real sandbox
 * processes.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { ToolRunner } from "../../pkg/runtime/tool_runner.ts";
import { call, ToolDir } from "./_helpers.ts";

Deno.test("a file a call opened is closed when the call returns", async (t) => {
  const dir = new ToolDir();
  const data = Deno.makeTempDirSync({ prefix: "compozy-file-leftovers-" });
  const runner = new ToolRunner({ maxWarmPerKey: 1, startTimeoutMs: 60_000 });
  const permissions = { read: [data], write: [data] };
  const twice = async (tool: string) => {
    const first = await runner.run(call(tool, { dir: data, step: 1 }, { permissions, timeoutMs: 60_000 }));
    assert.ok(first.ok, JSON.stringify(first));
    const second = await runner.run(call(tool, { dir: data, step: 2 }, { permissions, timeoutMs: 60_000 }));
    assert.ok(second.ok, JSON.stringify(second));
    return { first: first.output, second: second.output };
  };
  try {
    Deno.writeTextFileSync(join(data, "secret.txt"), "execution A's data");

    await t.step("Deno.open and openSync", async () => {
      for (
        const open of [
          "await Deno.open(input.dir + '/secret.txt')",
          "Deno.openSync(input.dir + '/secret.txt')",
        ]
      ) {
        const tool = dir.tool(
          `file_${open.startsWith("await") ? "async" : "sync"}`,
          `let kept: Deno.FsFile | undefined;
           export default async (input: { dir: string; step: number }) => {
             if (input.step === 1) { kept = ${open}; return "opened"; }
             const buf = new Uint8Array(64);
             try {
               const n = kept!.readSync(buf);
               return new TextDecoder().decode(buf.subarray(0, n ?? 0));
             } catch (e) {
               return (e as Error).name;
             }
           };`,
        );
        assert.deepEqual(await twice(tool), { first: "opened", second: "BadResource" });
      }
    });

    await t.step("a file opened by the module's load stays open for every call", async () => {
      const tool = dir.tool(
        "load_file",
        `const file = Deno.openSync(${JSON.stringify(join(data, "secret.txt"))});
         export default () => {
           file.seekSync(0, Deno.SeekMode.Start);
           const buf = new Uint8Array(64);
           return new TextDecoder().decode(buf.subarray(0, file.readSync(buf) ?? 0));
         };`,
      );
      assert.deepEqual(await twice(tool), { first: "execution A's data", second: "execution A's data" });
    });
  } finally {
    await runner.close();
    dir.cleanup();
    Deno.removeSync(data, { recursive: true });
  }
});
