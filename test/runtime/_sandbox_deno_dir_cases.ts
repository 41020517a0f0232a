/**
 * Cases of sandbox_deno_dir_test.ts, run in a process of their own (they set DENO_DIR).
 *
 * A sandbox uses the Deno cache the runtime guards (outside break attempt brk35). The runtime refuses every
 * write grant reaching Deno's cache (`DENO_DIR`, else `deno info`'s answer: deno_cache_dir.ts), which holds
 * the transpiled sandbox code every sandbox loads. But sandboxes start with their environment cleared, so
 * under a runtime with `DENO_DIR` set they kept using their user's default cache, which nothing guarded: a
 * grant on it was refused only when the folder was too big to scan. The runtime here has its own `DENO_DIR`
 * (set before this process first asks for it); the sandbox's open cache files are read from `/proc`.
 */
import assert from "node:assert/strict";
import { denoCacheDir } from "../../pkg/runtime/deno_cache_dir.ts";
import { ToolRunner } from "../../pkg/runtime/tool_runner.ts";
import { call, ToolDir } from "./_helpers.ts";

/** The files under a Deno cache (`…_cache_v2`, their `-wal` and `-shm`) process `pid` holds open. */
function openCacheFiles(pid: number): string[] {
  const files: string[] = [];
  for (const entry of Deno.readDirSync(`/proc/${pid}/fd`)) {
    try {
      const target = Deno.readLinkSync(`/proc/${pid}/fd/${entry.name}`);
      if (/_cache_v2(-wal|-shm)?$/.test(target)) files.push(target);
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e; // closed meanwhile
    }
  }
  return files;
}

Deno.test({
  name: "brk35: under a runtime with DENO_DIR set, a sandbox's caches are in that folder",
  ignore: Deno.build.os !== "linux",
  async fn() {
    const denoDir = Deno.makeTempDirSync({ prefix: "compozy-deno-dir-" });
    const before = Deno.env.get("DENO_DIR");
    Deno.env.set("DENO_DIR", denoDir);
    const dir = new ToolDir();
    const runner = new ToolRunner({ maxWarmPerKey: 1, startTimeoutMs: 120_000 });
    try {
      assert.equal(
        await denoCacheDir(),
        denoDir,
        "this process asked for Deno's cache before the test set it",
      );
      const tool = dir.tool("echo", `export default (input: unknown) => input;`);
      const result = await runner.run(call(tool, "hi", { timeoutMs: 120_000 }));
      assert.deepEqual(result.ok && result.output, "hi");
      const caches = openCacheFiles(runner.stats().pids[0]);
      assert.ok(caches.length > 0, "the sandbox holds no cache file open");
      // Before: /root/.cache/deno/dep_analysis_cache_v2 and the like, outside the guarded folder.
      assert.deepEqual(caches.filter((file) => !file.startsWith(`${denoDir}/`)), []);
    } finally {
      await runner.close();
      dir.cleanup();
      if (before === undefined) Deno.env.delete("DENO_DIR");
      else Deno.env.set("DENO_DIR", before);
      Deno.removeSync(denoDir, { recursive: true });
    }
  },
});
