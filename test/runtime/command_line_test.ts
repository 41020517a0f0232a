/**
 * Deno 2.9 answers `Deno.execPath()` without a read grant, and `Deno.args`, `process.argv`, `execPath` and
 * `title` held the sandbox's command line: the Deno binary's path and the sandbox's configuration (the
 * runtime's checkout, SES's path, the worker's permissions). Now a tool learns the binary's path only with
 * read access to it, and gets no command line. Real sandbox processes.
 */
import assert from "node:assert/strict";
import { ToolRunner } from "../../pkg/runtime/tool_runner.ts";
import { call, ToolDir } from "./_helpers.ts";

const PROBE = `import process from "node:process";
export default () => {
  let exec: string;
  try {
    exec = Deno.execPath();
  } catch (e) {
    exec = (e as Error).name;
  }
  return {
    exec,
    args: Deno.args,
    argv: process.argv,
    argv0: process.argv0,
    execPath: process.execPath,
    title: process.title,
  };
};`;

Deno.test("a tool without read access to the Deno binary learns neither its path nor the sandbox's command line", async () => {
  const dir = new ToolDir();
  const runner = new ToolRunner();
  try {
    const probe = dir.tool("probe", PROBE);
    const result = await runner.run(call(probe, {}, { timeoutMs: 60_000 }));
    assert.ok(result.ok, JSON.stringify(result));
    const text = JSON.stringify(result.output);
    // Before: execPath answered, and the args held the runtime's checkout and the worker's permissions.
    assert.ok(!text.includes(Deno.execPath()), text);
    assert.ok(!text.includes("workerPermissions") && !text.includes("tool_worker.ts"), text);
    assert.deepEqual(result.output, {
      exec: "NotCapable",
      args: [],
      argv: ["deno"],
      argv0: "deno",
      execPath: "deno",
      title: "deno",
    });
    const direct = dir.tool("direct", `export default () => Deno.execPath();`);
    const failed = await runner.run(call(direct, {}, { timeoutMs: 60_000 }));
    assert.ok(!failed.ok && failed.failure.code === "tool_permission_denied", JSON.stringify(failed));
  } finally {
    await runner.close();
    dir.cleanup();
  }
});

Deno.test("a tool granted read access to the Deno binary gets its path", async () => {
  const dir = new ToolDir();
  const runner = new ToolRunner();
  try {
    const probe = dir.tool("probe", PROBE);
    const result = await runner.run(
      call(probe, {}, { timeoutMs: 60_000, permissions: { read: [Deno.execPath()] } }),
    );
    assert.ok(result.ok, JSON.stringify(result));
    const output = result.output as Record<string, unknown>;
    assert.equal(output.exec, Deno.execPath());
    assert.equal(output.execPath, Deno.execPath());
    assert.equal(output.argv0, Deno.execPath());
    assert.deepEqual(output.args, []);
  } finally {
    await runner.close();
    dir.cleanup();
  }
});
