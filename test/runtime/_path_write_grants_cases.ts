/**
 * A `write` grant may neither cover nor lie directly in a folder of the runtime's PATH: the runtime finds
 * programs there by name (`nats-server`, the compiled binary's `deno`), and so does the operator's shell. A
 * tool granted `write` on a PATH folder before `/bin` planted `sh` and ran as the operator at the next start
 * (outside break attempt brk-sbx3, "Open"). Refused at run and by `compozy validate`; under `write: true` the
 * PATH folders are denied. A grant two or more levels inside one is given (`$HOME` on PATH refused every
 * grant of its projects, sbx29): the tool is shown unable to plant anything in the PATH folder from there.
 *
 * It sets PATH and NATS_SERVER_BIN for its whole process: path_write_grants_test.ts runs it in a process of
 * its own (test/support/own_process.ts).
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
// A PATH folder that holds projects, as `$HOME` on PATH does.
const userHome = await Deno.makeTempDir({ prefix: "compozy-path-grants-user-" });
// A nats-server outside PATH, named by NATS_SERVER_BIN, as `compozy dev` starts it.
const natsDir = join(projects, "opt-nats");
const natsBin = join(natsDir, "nats-server");
await Deno.mkdir(natsDir);
await Deno.writeTextFile(natsBin, "#!/bin/sh\n", { mode: 0o755 });
Deno.env.set("NATS_SERVER_BIN", natsBin);
// Programs linked into a PATH folder from elsewhere (as `ln -s`, `npm link` or `pipx` do): a look-up of
// `deploy` runs ops/bin/deploy, and one of `later` would run ops/later once something creates it.
const ops = join(projects, "ops");
const deploy = join(ops, "bin", "deploy");
await Deno.mkdir(join(ops, "bin"), { recursive: true });
await Deno.mkdir(join(ops, "other"));
await Deno.writeTextFile(deploy, "#!/bin/sh\necho deploying\n", { mode: 0o755 });
const linksDir = await Deno.makeTempDir({ prefix: "compozy-path-grants-links-" });
await Deno.symlink(deploy, join(linksDir, "deploy"));
await Deno.symlink(join(ops, "later"), join(linksDir, "later"));
Deno.env.set("PATH", `${pathDir}:${userHome}:${linksDir}:${Deno.env.get("PATH") ?? ""}`);

async function project(write: string, under = projects): Promise<{ root: string; tool: string }> {
  const root = await Deno.makeTempDir({ dir: under, prefix: "project-" });
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

Deno.test("a write grant covering where a symlink in a PATH folder leads is refused at run and by validate", async () => {
  const runner = new ToolRunner({ maxWarmPerKey: 1, startTimeoutMs: 60_000 });
  try {
    const { root, tool } = await project(
      `[${JSON.stringify(join(ops, "bin"))}, ${JSON.stringify(join(ops, "other"))}]`,
    );
    for (const write of [[join(ops, "bin")], [deploy], [ops], [join(ops, "later")]]) {
      const result = await runner.run(
        call(tool, { path: deploy }, { permissions: { write }, timeoutMs: 60_000 }),
      );
      assert.ok(!result.ok, `write: ${write} was granted: ${JSON.stringify(result)}`);
      assert.equal(result.failure.code, "tool_permission_denied");
      assert.match(result.failure.message, /where a symlink in a folder of the runtime's PATH leads/);
    }
    // A folder next to the program is granted: it holds nothing a look-up runs.
    const beside = await runner.run(
      call(tool, { path: join(ops, "other", "x") }, {
        permissions: { write: [join(ops, "other")] },
        timeoutMs: 60_000,
      }),
    );
    assert.ok(beside.ok && beside.output === "written", JSON.stringify(beside));
    assert.equal(await Deno.readTextFile(deploy), "#!/bin/sh\necho deploying\n");
    const found = (await checkProject(root, { processEnv: {} })).map((d) => formatDiagnostic(d, root));
    assert.ok(
      found.some((d) => /write\[0\]: .*where a symlink in a folder of the runtime's PATH leads/.test(d)),
      found.join("\n"),
    );
    assert.ok(!found.some((d) => /write\[1\]/.test(d)), found.join("\n"));
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

Deno.test("a write grant two levels inside a PATH folder is granted, and cannot plant a program there", async () => {
  // `$HOME` on PATH: every project under it lies inside a PATH folder. A grant at least two levels down
  // cannot create or replace an entry of the PATH folder, nor move the folders between.
  const runner = new ToolRunner({ maxWarmPerKey: 1, startTimeoutMs: 60_000 });
  try {
    const { root } = await project("[]", userHome);
    const out = join(root, "out");
    await Deno.mkdir(out);
    const tool = join(root, "tools/escape.ts");
    await Deno.writeTextFile(
      tool,
      `export default (input: { home: string; root: string; out: string }) => {
         const attempts: Record<string, () => void> = {
           "write in the PATH folder": () =>
             Deno.writeTextFileSync(input.home + "/evil", "#!/bin/sh\\n", { mode: 0o755 }),
           "write through ..": () => Deno.writeTextFileSync(input.out + "/../../evil", "#!/bin/sh\\n"),
           "move the granted folder into the PATH folder": () => Deno.renameSync(input.out, input.home + "/evil"),
           "remove the project folder": () => Deno.removeSync(input.root, { recursive: true }),
           "write in the granted folder": () => Deno.writeTextFileSync(input.out + "/ok", "ok"),
         };
         const results: Record<string, string> = {};
         for (const [what, attempt] of Object.entries(attempts)) {
           try {
             attempt();
             results[what] = "done";
           } catch (e) {
             results[what] = (e as Error).name;
           }
         }
         return results;
       };`,
    );
    const result = await runner.run(
      call(tool, { home: userHome, root, out }, { permissions: { write: [out] }, timeoutMs: 60_000 }),
    );
    assert.ok(result.ok, JSON.stringify(result));
    assert.deepEqual(result.output, {
      "write in the PATH folder": "NotCapable",
      "write through ..": "NotCapable",
      "move the granted folder into the PATH folder": "NotCapable",
      "remove the project folder": "NotCapable",
      "write in the granted folder": "done",
    });
    assert.deepEqual((await Array.fromAsync(Deno.readDir(userHome))).map((e) => e.name), [
      root.slice(userHome.length + 1),
    ]);
  } finally {
    await runner.close();
  }
});

Deno.test("a write grant directly in a PATH folder is refused, under its given or its real path", async () => {
  // Granted `<PATH folder>/x`, a tool removes the folder `x` and writes an executable file `x` there.
  const runner = new ToolRunner({ maxWarmPerKey: 1, startTimeoutMs: 60_000 });
  try {
    const { root, tool } = await project("[]", userHome);
    const direct = join(userHome, "direct");
    await Deno.mkdir(direct);
    // `link/out` lies two levels inside the project, but its real path lies directly in `pathDir`.
    await Deno.symlink(pathDir, join(root, "link"));
    for (const write of [[direct], [join(root, "link", "out")]]) {
      const result = await runner.run(
        call(tool, { path: join(write[0], "x") }, { permissions: { write }, timeoutMs: 60_000 }),
      );
      assert.ok(!result.ok, `write: ${write} was granted: ${JSON.stringify(result)}`);
      assert.equal(result.failure.code, "tool_permission_denied");
      assert.match(result.failure.message, /a folder of the runtime's PATH/);
    }
  } finally {
    await runner.close();
  }
});

Deno.test("compozy validate accepts a grant two levels inside a PATH folder, not one directly in it", async () => {
  const { root } = await project(`["../out", ${JSON.stringify(join(userHome, "direct-too"))}]`, userHome);
  const found = (await checkProject(root, { processEnv: {} })).map((d) => formatDiagnostic(d, root));
  assert.ok(!found.some((d) => /write\[0\]/.test(d)), found.join("\n"));
  assert.ok(found.some((d) => /write\[1\]: .*a folder of the runtime's PATH/.test(d)), found.join("\n"));
});

globalThis.addEventListener("unload", () => {
  Deno.removeSync(linksDir, { recursive: true });
  Deno.removeSync(userHome, { recursive: true });
  Deno.removeSync(home, { recursive: true });
  Deno.removeSync(projects, { recursive: true });
});
