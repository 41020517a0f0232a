/**
 * A `write` grant may neither cover nor lie inside a project's `.git`: a hook there (`pre-commit`) or
 * `core.fsmonitor` in `.git/config` runs as the developer at the next git command in the project, outside
 * every sandbox (outside break attempt sbx29: `write: ["../.git/hooks"]` passed run and `compozy validate`).
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { checkProject, formatDiagnostic } from "../../engine/domain/project/mod.ts";
import { scriptCommand } from "../../pkg/runtime/mcp/mcp_transport.ts";
import { ToolRunner } from "../../pkg/runtime/tool_runner.ts";
import { call } from "./_helpers.ts";

async function gitProject(): Promise<{ root: string; tool: string; hook: string }> {
  const root = await Deno.makeTempDir({ prefix: "compozy-git-grants-" });
  await Deno.mkdir(join(root, ".git/hooks"), { recursive: true });
  await Deno.mkdir(join(root, "tools"));
  const tool = join(root, "tools/hook.ts");
  await Deno.writeTextFile(
    tool,
    `export default (input: { path: string }) => {
       try {
         Deno.writeTextFileSync(input.path, "#!/bin/sh\\necho hooked\\n", { mode: 0o755 });
         return "written";
       } catch (e) {
         return (e as Error).name;
       }
     };`,
  );
  await Deno.writeTextFile(join(root, "compozy.yaml"), "name: git\nworkflows:\n  - source: ./wf.yaml\n");
  await Deno.writeTextFile(
    join(root, "wf.yaml"),
    `id: wf
tools:
  - id: hook
    execute: ./tools/hook.ts
    permissions: { write: ["../.git/hooks", "../.git"] }
tasks:
  - { id: a, use: tool(id=hook) }
`,
  );
  return { root, tool, hook: join(root, ".git/hooks/pre-commit") };
}

Deno.test("a write grant on or inside a project's .git is refused at run, by validate and for a script server", async () => {
  const { root, tool, hook } = await gitProject();
  const runner = new ToolRunner({ maxWarmPerKey: 1, startTimeoutMs: 60_000 });
  try {
    for (const write of [[join(root, ".git/hooks")], [join(root, ".git")]]) {
      const result = await runner.run(
        call(tool, { path: hook }, { permissions: { write }, timeoutMs: 60_000 }),
      );
      assert.ok(!result.ok, `write: ${write} was granted: ${JSON.stringify(result)}`);
      assert.equal(result.failure.code, "tool_permission_denied");
      assert.match(result.failure.message, /a project's git folder/);
    }
    const all = await runner.run(
      call(tool, { path: hook }, { permissions: { write: true }, timeoutMs: 60_000 }),
    );
    assert.ok(all.ok, JSON.stringify(all));
    assert.equal(all.output, "NotCapable");
    assert.equal(await Deno.stat(hook).then(() => true, () => false), false);

    const found = (await checkProject(root, { processEnv: {} })).map((d) => formatDiagnostic(d, root));
    assert.ok(found.some((d) => /write\[0\]: .*a project's git folder/.test(d)), found.join("\n"));
    assert.ok(found.some((d) => /write\[1\]: .*a project's git folder/.test(d)), found.join("\n"));

    const script = join(root, "server.ts");
    await Deno.writeTextFile(script, "console.log(1);\n");
    const server = { id: "s", script, timeoutMs: 5_000, cwd: root, permissions: { write: [".git/hooks"] } };
    await assert.rejects(scriptCommand(server, script), (e: unknown) => {
      assert.equal((e as { code?: string }).code, "tool_permission_denied");
      assert.match((e as Error).message, /a project's git folder/);
      return true;
    });
  } finally {
    await runner.close();
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("a write grant inside the .git of a repository holding the project in a subfolder is refused", async () => {
  const repo = await Deno.makeTempDir({ prefix: "compozy-git-repo-" });
  const { root, tool } = await gitProject();
  const runner = new ToolRunner({ maxWarmPerKey: 1, startTimeoutMs: 60_000 });
  try {
    // The project lives in <repo>/app; the repository's .git is above it.
    await Deno.mkdir(join(repo, ".git/hooks"), { recursive: true });
    await Deno.rename(root, join(repo, "app"));
    const moved = tool.replace(root, join(repo, "app"));
    const repoHook = join(repo, ".git/hooks/pre-commit");
    const result = await runner.run(
      call(moved, { path: repoHook }, {
        permissions: { write: [join(repo, ".git/hooks")] },
        timeoutMs: 60_000,
      }),
    );
    assert.ok(!result.ok, JSON.stringify(result));
    assert.match(result.failure.message, /a project's git folder/);
    assert.equal(await Deno.stat(repoHook).then(() => true, () => false), false);
  } finally {
    await runner.close();
    await Deno.remove(repo, { recursive: true });
  }
});
