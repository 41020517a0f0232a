/**
 * A sandbox never dumps core (outside break attempt brk35). It inherited the runtime's core size limit,
 * which containers commonly leave unlimited: a tool granted nothing sent itself SIGQUIT and the kernel wrote
 * the process's memory (its env values, the call keys) as `core` into the tool's folder, 1.36 GB with
 * 200 MiB touched, with no `write` grant and past every bound. The runtime here is started with core dumps
 * allowed, as such a container would; the test runs where the kernel writes a plain `core` file (a shell
 * that sends itself SIGQUIT leaves one), not where cores go to a handler.
 */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { ToolDir } from "./_helpers.ts";

/** Whether a process here with core dumps allowed leaves a `core` file in its working folder. */
function kernelWritesCoreFiles(): boolean {
  if (Deno.build.os !== "linux") return false;
  const dir = Deno.makeTempDirSync({ prefix: "compozy-core-probe-" });
  try {
    new Deno.Command("/bin/sh", { args: ["-c", "ulimit -c unlimited && kill -QUIT $$"], cwd: dir })
      .outputSync();
    return [...Deno.readDirSync(dir)].some((e) => e.name.startsWith("core"));
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
}

Deno.test({
  name: "brk35: a tool that sends itself SIGQUIT leaves no core file, even when the runtime allows them",
  ignore: !kernelWritesCoreFiles(),
  async fn() {
    const dir = new ToolDir();
    try {
      const host = fileURLToPath(new URL("./_core_dump_host.ts", import.meta.url));
      const out = await new Deno.Command("/bin/sh", {
        args: ["-c", 'ulimit -c unlimited && exec "$0" run -A "$1" "$2"', Deno.execPath(), host, dir.path],
        stderr: "inherit",
      }).output();
      assert.equal(out.code, 0);
      const entries = JSON.parse(new TextDecoder().decode(out.stdout).trim().split("\n").at(-1)!);
      // Before: ["core", "quit.ts"].
      assert.deepEqual(entries, ["quit.ts"]);
    } finally {
      dir.cleanup();
    }
  },
});
