/**
 * A tool's env values become the sandbox process's environment, so a name that the dynamic loader or Deno
 * itself reads (LD_PRELOAD, DENO_V8_FLAGS, ...) would configure the process outside the permission model:
 * LD_PRELOAD loads native code into it. Real sandbox processes.
 */
import assert from "node:assert/strict";
import { scriptCommand } from "../../pkg/runtime/mcp/mcp_transport.ts";
import { ToolFailure } from "../../pkg/runtime/tool_failure.ts";
import { ToolRunner } from "../../pkg/runtime/tool_runner.ts";
import { call, ToolDir } from "./_helpers.ts";

Deno.test("a tool's env never sets a variable the loader or Deno reads: listed, it is refused; under env: true, it is left out", async () => {
  const dir = new ToolDir();
  const runner = new ToolRunner({ maxWarmPerKey: 1, startTimeoutMs: 60_000 });
  const marker = `${dir.path}/preloaded`;
  try {
    // Native code the loader would run in the sandbox process: it writes a file no grant allows.
    const library = await sharedLibraryWritingTo(dir.path, marker);
    const tool = dir.tool(
      "reads_env",
      `const read = (name: string) => {
         try { return Deno.env.get(name) ?? null; } catch { return "not granted"; }
       };
       export default () => ({ preload: read("LD_PRELOAD"), flags: read("DENO_V8_FLAGS"), plain: read("PLAIN") });`,
    );
    const env = { LD_PRELOAD: library, DENO_V8_FLAGS: "--allow-natives-syntax", PLAIN: "ok" };

    for (const name of ["LD_PRELOAD", "DENO_V8_FLAGS", "GCONV_PATH", "NODE_OPTIONS"]) {
      const listed = await runner.run(call(tool, null, { permissions: { env: [name] }, env }));
      assert.equal(listed.ok, false, `${name} listed in permissions.env ran: ${JSON.stringify(listed)}`);
      assert.equal(listed.ok ? "" : listed.failure.code, "tool_permission_denied");
      assert.match(listed.ok ? "" : listed.failure.message, new RegExp(name));
      assert.equal(
        exists(marker),
        false,
        `the library preloaded with ${name} listed ran in the sandbox process`,
      );
    }

    const all = await runner.run(call(tool, null, { permissions: { env: true }, env }));
    assert.ok(all.ok, JSON.stringify(all));
    // Not in its environment, and denied to it: under env: true they may be neither read nor set.
    assert.deepEqual(all.output, { preload: "not granted", flags: "not granted", plain: "ok" });
    assert.equal(exists(marker), false, "the preloaded library ran in the sandbox process");
  } finally {
    await runner.close();
    dir.cleanup();
  }
});

/** Builds a library whose constructor writes `marker`, when a C compiler is present; a path otherwise. */
async function sharedLibraryWritingTo(folder: string, marker: string): Promise<string> {
  const source = `${folder}/preload.c`;
  const library = `${folder}/preload.so`;
  Deno.writeTextFileSync(
    source,
    `#include <stdio.h>
     __attribute__((constructor)) static void run(void) { FILE *f = fopen("${marker}", "w"); if (f) fclose(f); }`,
  );
  try {
    await new Deno.Command("cc", { args: ["-shared", "-fPIC", "-o", library, source] }).output();
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
  return library;
}

function exists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return false;
    throw error;
  }
}

Deno.test("an MCP script server's env never sets a variable the loader or Deno reads", async () => {
  const dir = new ToolDir();
  try {
    const script = dir.tool("server", "export {};");
    const server = { id: "docs", script, timeoutMs: 5_000, cwd: dir.path };
    await assert.rejects(
      scriptCommand({ ...server, env: { PLAIN: "ok", LD_PRELOAD: `${dir.path}/x.so` } }, script),
      (error: unknown) =>
        error instanceof ToolFailure && error.code === "tool_permission_denied" &&
        /LD_PRELOAD/.test(error.message),
    );
    const { args } = await scriptCommand({ ...server, env: { PLAIN: "ok" } }, script);
    assert.ok(args.includes(script));
  } finally {
    dir.cleanup();
  }
});
