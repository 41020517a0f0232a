/**
 * Paths the file system cannot follow, written by a project's author: a workflow `source:` that is a loop of
 * symbolic links (ELOOP), a tool's `execute` and an MCP script that go through a file as if it were a folder
 * (ENOTDIR). Each is an error at its file or field, with the system's reason; the other errors of the project
 * are still said. Before, the first of them thrown from the loader ended `compozy validate` with "internal
 * error" and a stack (exit 2), and a `compozy dev --watch` reload with it. Real files, `compozy validate`.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { runCli } from "../e2e/support/dev_server.ts";

Deno.test("validate: a path through a file or a loop of links is an error at its field, not an internal error", async () => {
  const dir = await Deno.makeTempDir({ prefix: "compozy-unreadable-paths-" });
  try {
    await Deno.mkdir(join(dir, "tools"));
    await Deno.writeTextFile(join(dir, "tools/greet.ts"), "export default () => ({});\n");
    await Deno.symlink(join(dir, "loop-b.yaml"), join(dir, "loop-a.yaml"));
    await Deno.symlink(join(dir, "loop-a.yaml"), join(dir, "loop-b.yaml"));
    await Deno.writeTextFile(
      join(dir, "compozy.yaml"),
      `name: unreadable
workflows:
  - source: ./wf.yaml
  - source: ./loop-a.yaml
mcp:
  - id: helper
    script: ./tools/greet.ts/server.ts
`,
    );
    await Deno.writeTextFile(
      join(dir, "wf.yaml"),
      `id: wf
tools:
  - id: shout
    execute: ./tools/greet.ts/shout.ts
  - id: typo
    execute: ./tools/missing.ts
tasks:
  - id: one
    use: tool(id=shout)
    final: true
`,
    );
    const out = await runCli(["validate", "--cwd", dir]);
    const lines = (out.stdout + out.stderr).trim().split("\n");
    assert.equal(out.code, 1, lines.join("\n"));
    assert.ok(!lines.some((l) => /internal error/.test(l)), lines.join("\n"));
    const expected = [
      /^compozy\.yaml:7:13: mcp\[0\]\.script: MCP server script cannot be read \(Not a directory \(os error 20\)\): \.\/tools\/greet\.ts\/server\.ts$/,
      /^loop-a\.yaml:1:1: \(root\): cannot read the file: Too many levels of symbolic links \(os error 40\)$/,
      /^wf\.yaml:4:14: tools\[0\]\.execute: tool module cannot be read \(Not a directory \(os error 20\)\): \.\/tools\/greet\.ts\/shout\.ts$/,
      /^wf\.yaml:6:14: tools\[1\]\.execute: tool module not found: \.\/tools\/missing\.ts$/,
    ];
    for (const line of expected) assert.ok(lines.some((l) => line.test(l)), `${line}\n${lines.join("\n")}`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
