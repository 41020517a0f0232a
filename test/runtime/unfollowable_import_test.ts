/**
 * A tool importing a path the file system cannot follow: through a file (`./greet.ts/typo.ts`, ENOTDIR) or a
 * loop of symbolic links (ELOOP). `deno info` says only "Import '…' failed."; the import check then looked for
 * the module's real path and threw the system's error, which failed the call as `tool_crashed` "failed in the
 * runtime" (and ended `compozy validate` with "internal error", test/config/validate_unfollowable_imports_test.ts).
 * It is the tool's `tool_module_invalid`, naming the import and the reason. Real tool files, real `deno info`,
 * real sandbox processes.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { ToolRunner } from "../../pkg/runtime/tool_runner.ts";
import { call, ToolDir } from "./_helpers.ts";

Deno.test("a tool importing through a file or a loop of links fails as an invalid module, naming why", async (t) => {
  const dir = new ToolDir("compozy-unfollowable-");
  const runner = new ToolRunner({ maxWarmPerKey: 1 });
  try {
    dir.tool("greet", `export const x = "hi";\n`);
    await Deno.symlink(join(dir.path, "loop-b.ts"), join(dir.path, "loop-a.ts"));
    await Deno.symlink(join(dir.path, "loop-a.ts"), join(dir.path, "loop-b.ts"));
    const cases = [
      [
        "a path through a file",
        "./greet.ts/typo.ts",
        /greet\.ts\/typo\.ts' failed: Not a directory \(os error 20\)$/,
      ],
      [
        "a loop of links",
        "./loop-a.ts",
        /loop-a\.ts' failed: Too many levels of symbolic links \(os error 40\)$/,
      ],
    ] as const;
    for (const [what, specifier, why] of cases) {
      await t.step(what, async () => {
        const tool = dir.tool(
          "shout",
          `import { x } from ${JSON.stringify(specifier)};\nexport default () => x;\n`,
        );
        const result = await runner.run(call(tool, null, { timeoutMs: 30_000 }));
        assert.ok(!result.ok, JSON.stringify(result));
        assert.equal(result.failure.code, "tool_module_invalid", result.failure.message);
        assert.match(result.failure.message, why);
        assert.ok(
          result.failure.message.startsWith(`Cannot load tool module ${tool}: `),
          result.failure.message,
        );
      });
    }
  } finally {
    await runner.close();
    dir.cleanup();
  }
});
