/**
 * A `write` grant may neither cover nor lie inside a folder of the runtime's PATH: the runtime finds programs
 * there by name (`nats-server`, the compiled binary's `deno`), and so does the operator's shell. A tool
 * granted `write` on a PATH folder before `/bin` planted `sh` and ran as the operator at the next start
 * (outside break attempt brk-sbx3, "Open"). Refused at run and by `compozy validate`; under `write: true` the
 * PATH folders are denied.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { checkProject, formatDiagnostic } from "../../engine/domain/project/mod.ts";
import { scriptCommand } from "../../pkg/runtime/mcp/mcp_transport.ts";
import { ToolRunner } from "../../pkg/runtime/tool_runner.ts";
import { call } from "./_helpers.ts";

// A PATH folder before /bin that the operator can write, like ~/.local/bin. Set before anything asks for the
// runtime's PATH folders (they are read once per process, at the first sandbox start or check).
const home = await Deno.makeTempDir({ prefix: "compozy-path-grants-" });
const pathDir = join(home, "bin");
await Deno.mkdir(pathDir);
const projects = await Deno.makeTempDir({ prefix: "compozy-path-grants-projects-" });
// A nats-server outside PATH, named by NATS_SERVER_BIN, as `compozy dev` starts it.
const natsDir = join(projects, "opt-nats");
const natsBin = join(natsDir, "nats-server");
await Deno.mkdir(natsDir);
await Deno.writeTextFile(natsBin, "#!/bin/sh\n", { mode: 0o755 });
Deno.env.set("NATS_SERVER_BIN", natsBin);
Deno.env.set("PATH", `${pathDir}:${Deno.env.get("PATH") ?? ""}`);

async function project(write: string): Promise<{ root: string; tool: string }> {
  const root = await Deno.makeTempDir({ dir: projects, prefix: "project-" });
  await Deno.mkdir(join(root, "tools"));
  const tool = join(root, "tools/plant.ts");
  await Deno.writeTextFile(
    tool,
    `export default (input: { path: string }) => {
       try {
         Deno.writeTextFileSync(input.path, "#!/bin/sh\\necho planted\\n", { mode: 0o755 });
         return "written";
       } catch (e) {
         return (e as Error).name;
       }
     };`,
  );
  await Deno.writeTextFile(join(root, "compozy.yaml"), "name: plant\nworkflows:\n  - source: ./wf.yaml\n");
  await Deno.writeTextFile(
    join(root, "wf.yaml"),
    `id: wf
tools:
  - id: plant
    execute: ./tools/plant.ts
    permissions: { write: ${write} }
tasks:
  - { id: a, use: tool(id=plant) }
`,
  );
  return { root, tool };
}

Deno.test("a write grant on or inside a PATH folder is refused at run; write: true cannot write there", async () => {
  const runner = new ToolRunner({ maxWarmPerKey: 1, startTimeoutMs: 60_000 });
  const planted = join(pathDir, "sh");
  try {
    const { tool } = await project("[]");
    // A link to the PATH folder is refused under its real path.
    const link = join(projects, "bin-link");
    await Deno.symlink(pathDir, link);
    for (const write of [[pathDir], [planted], [home], [link]]) {
      const result = await runner.run(
        call(tool, { path: planted }, { permissions: { write }, timeoutMs: 60_000 }),
      );
      assert.ok(!result.ok, `write: ${write} was granted: ${JSON.stringify(result)}`);
      assert.equal(result.failure.code, "tool_permission_denied");
      assert.match(result.failure.message, /a folder of the runtime's PATH/);
    }
    const all = await runner.run(
      call(tool, { path: planted }, { permissions: { write: true }, timeoutMs: 60_000 }),
    );
    assert.ok(all.ok, JSON.stringify(all));
    assert.equal(all.output, "NotCapable");
    assert.equal(await Deno.stat(planted).then(() => true, () => false), false);
  } finally {
    await runner.close();
  }
});

Deno.test("compozy validate refuses a write grant on or inside a PATH folder, at the entry", async () => {
  const { root } = await project(`[${JSON.stringify(pathDir)}, ${JSON.stringify(join(pathDir, "sh"))}]`);
  const found = (await checkProject(root, { processEnv: {} })).map((d) => formatDiagnostic(d, root));
  assert.ok(found.some((d) => /write\[0\]: .*a folder of the runtime's PATH/.test(d)), found.join("\n"));
  assert.ok(found.some((d) => /write\[1\]: .*a folder of the runtime's PATH/.test(d)), found.join("\n"));
});

Deno.test("a write grant covering NATS_SERVER_BIN's nats-server is refused at run and by validate", async () => {
  const runner = new ToolRunner({ maxWarmPerKey: 1, startTimeoutMs: 60_000 });
  try {
    const { root, tool } = await project(`[${JSON.stringify(natsDir)}]`);
    for (const write of [[natsDir], [natsBin]]) {
      const result = await runner.run(
        call(tool, { path: natsBin }, { permissions: { write }, timeoutMs: 60_000 }),
      );
      assert.ok(!result.ok, `write: ${write} was granted: ${JSON.stringify(result)}`);
      assert.equal(result.failure.code, "tool_permission_denied");
    }
    const found = (await checkProject(root, { processEnv: {} })).map((d) => formatDiagnostic(d, root));
    assert.ok(found.some((d) => /write\[0\]: .*the nats-server it starts/.test(d)), found.join("\n"));
    assert.equal(await Deno.readTextFile(natsBin), "#!/bin/sh\n");
  } finally {
    await runner.close();
  }
});

Deno.test("an MCP script server's write grant inside a PATH folder is refused at start", async () => {
  const { root } = await project("[]");
  const script = join(root, "server.ts");
  await Deno.writeTextFile(script, "console.log(1);\n");
  const server = {
    id: "s",
    script,
    timeoutMs: 5_000,
    cwd: root,
    permissions: { write: [join(pathDir, "sh")] },
  };
  await assert.rejects(scriptCommand(server, script), (e: unknown) => {
    assert.equal((e as { code?: string }).code, "tool_permission_denied");
    assert.match((e as Error).message, /a folder of the runtime's PATH/);
    return true;
  });
});

globalThis.addEventListener("unload", () => {
  Deno.removeSync(home, { recursive: true });
  Deno.removeSync(projects, { recursive: true });
});
