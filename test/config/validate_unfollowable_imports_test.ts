/**
 * `compozy validate` on a tool whose import the file system cannot follow: through a file
 * (`./greet.ts/typo.ts`, ENOTDIR), a loop of symbolic links (ELOOP), a folder or a file it may not read
 * (EACCES). `deno info` says only "Import '…' failed."; the import check then looked for the module's real path
 * and threw the system's error, which ended `compozy validate` with "internal error" and a stack (exit 2).
 * Each is an error at the import's file, line and column, with the system's reason. Real files, real
 * `compozy validate`; EACCES runs it without the capabilities that let root read anything (`setpriv`).
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { runCli } from "../e2e/support/dev_server.ts";
import { hasSetpriv, runCliWithoutDacOverride } from "../support/without_dac_override.ts";

async function project(imports: string[]): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "compozy-unfollowable-imports-" });
  await Deno.mkdir(join(dir, "tools"));
  await Deno.writeTextFile(join(dir, "tools/greet.ts"), "export const x = 1;\n");
  const lines = imports.map((specifier, i) => `import { x as x${i} } from ${JSON.stringify(specifier)};`);
  await Deno.writeTextFile(
    join(dir, "tools/shout.ts"),
    `// imports the author mistyped\n${lines.join("\n")}\nexport default () => [${
      imports.map((_, i) => `x${i}`)
    }];\n`,
  );
  await Deno.writeTextFile(
    join(dir, "compozy.yaml"),
    "name: unfollowable\nworkflows:\n  - source: ./wf.yaml\n",
  );
  await Deno.writeTextFile(
    join(dir, "wf.yaml"),
    "id: wf\ntools:\n  - id: shout\n    execute: ./tools/shout.ts\ntasks:\n  - id: one\n    use: tool(id=shout)\n    final: true\n",
  );
  return dir;
}

function assertDiagnostic(out: { code: number; stdout: string; stderr: string }, expected: RegExp): void {
  const text = (out.stdout + out.stderr).trim();
  assert.equal(out.code, 1, text);
  assert.ok(!/internal error/.test(text), text);
  assert.ok(text.split("\n").some((l) => expected.test(l)), `${expected}\n${text}`);
}

Deno.test("validate: an import through a file or a loop of links is an error at the import, not an internal error", async () => {
  const dir = await project(["./greet.ts/typo.ts", "./loop-a.ts"]);
  try {
    await Deno.symlink(join(dir, "tools/loop-b.ts"), join(dir, "tools/loop-a.ts"));
    await Deno.symlink(join(dir, "tools/loop-a.ts"), join(dir, "tools/loop-b.ts"));
    const out = await runCli(["validate", "--cwd", dir]);
    // The check stops at the graph's first module in error, the one through a file (line 2).
    assertDiagnostic(
      out,
      /^tools\/shout\.ts:2:\d+: \(tool module\): tool_module_invalid: Import '.*\/tools\/greet\.ts\/typo\.ts' failed: Not a directory \(os error 20\)$/,
    );
    await Deno.writeTextFile(
      join(dir, "tools/shout.ts"),
      `import { x } from "./loop-a.ts";\nexport default () => x;\n`,
    );
    assertDiagnostic(
      await runCli(["validate", "--cwd", dir]),
      /^tools\/shout\.ts:1:\d+: \(tool module\): tool_module_invalid: Import '.*\/tools\/loop-a\.ts' failed: Too many levels of symbolic links \(os error 40\)$/,
    );

    // An MCP script's graph goes through the same check.
    await Deno.writeTextFile(join(dir, "tools/shout.ts"), "export default () => 1;\n");
    await Deno.writeTextFile(
      join(dir, "tools/server.ts"),
      `import { x } from "./greet.ts/typo.ts";\nconsole.log(x);\n`,
    );
    await Deno.writeTextFile(
      join(dir, "compozy.yaml"),
      "name: unfollowable\nworkflows:\n  - source: ./wf.yaml\nmcp:\n  - id: helper\n    script: ./tools/server.ts\n",
    );
    assertDiagnostic(
      await runCli(["validate", "--cwd", dir]),
      /^compozy\.yaml:6:13: mcp\[0\]\.script: tool_module_invalid: .*Import '.*\/tools\/greet\.ts\/typo\.ts' failed: Not a directory \(os error 20\)$/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test({
  name:
    "validate: an import of a folder or a file it may not read is an error at the import, not an internal error",
  ignore: !hasSetpriv(),
  fn: async () => {
    const dir = await project(["./locked/x.ts"]);
    try {
      await Deno.mkdir(join(dir, "tools/locked"));
      await Deno.writeTextFile(join(dir, "tools/locked/x.ts"), "export const x = 1;\n");
      await Deno.chmod(join(dir, "tools/locked"), 0o000);
      const expected =
        /^tools\/shout\.ts:2:\d+: \(tool module\): tool_module_invalid: Import '.*\/tools\/locked\/x\.ts' failed: Permission denied \(os error 13\)$/;
      assertDiagnostic(await runCliWithoutDacOverride(["validate", "--cwd", dir]), expected);
      await Deno.chmod(join(dir, "tools/locked"), 0o755);
      await Deno.chmod(join(dir, "tools/locked/x.ts"), 0o000);
      assertDiagnostic(await runCliWithoutDacOverride(["validate", "--cwd", dir]), expected);
    } finally {
      await Deno.chmod(join(dir, "tools/locked"), 0o755);
      await Deno.remove(dir, { recursive: true });
    }
  },
});
