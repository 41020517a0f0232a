/**
 * Where the CLI's file flags point (API.md "CLI": every command takes `--cwd DIR`): a relative path is read
 * against the project folder, an absolute one is taken as it is.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { copyProject, FIXTURE_PROJECT, runCli, startDev } from "./support/dev_server.ts";

Deno.test("schemagen --out takes an absolute folder as it is, a relative one inside --cwd", async () => {
  const dir = await Deno.makeTempDir({ prefix: "compozy-schemagen-" });
  try {
    const project = join(dir, "project");
    const elsewhere = join(dir, "elsewhere");
    await Deno.mkdir(project);
    const absolute = await runCli(["schemagen", "--cwd", project, "--out", elsewhere]);
    assert.equal(absolute.code, 0, absolute.stderr);
    for (const file of ["compozy.json", "workflow.json", "agent.json", "tool.json"]) {
      await Deno.stat(join(elsewhere, file));
    }
    const relative = await runCli(["schemagen", "--cwd", project, "--out", "json"]);
    assert.equal(relative.code, 0, relative.stderr);
    await Deno.stat(join(project, "json/workflow.json"));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test({
  name: "run --input-file reads a relative file inside --cwd, the project folder",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const dir = await copyProject(FIXTURE_PROJECT);
    const dev = await startDev({ dir, env: { HOOK_SECRET: "s" } });
    try {
      await Deno.writeTextFile(join(dir, "input.json"), '{"name": "From the project"}');
      // The CLI runs from the checkout (runCli's cwd): only --cwd says where input.json is.
      const run = await runCli(
        ["run", "approval", "--cwd", dir, "--input-file", "missing-here.json", "--server", dev.url],
      );
      assert.equal(run.code, 1);
      assert.match(run.stderr, new RegExp(`Cannot read ${dir}/missing-here\\.json`));
      const found = await runCli(
        ["run", "hello", "--cwd", dir, "--input-file", "input.json", "--server", dev.url, "--json"],
      );
      assert.equal(found.code, 0, found.stderr);
      const { exec_id: execId } = JSON.parse(found.stdout);
      const state = await (await dev.fetch(`/api/executions/${execId}`)).json();
      assert.deepEqual(state.input, { name: "From the project" });
    } finally {
      await dev.stop();
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test("validate and build on a folder without compozy.yaml name the folder and the way out", async () => {
  const dir = await Deno.makeTempDir({ prefix: "compozy-no-project-" });
  try {
    for (const command of ["validate", "build"]) {
      const res = await runCli([command, "--cwd", dir]);
      assert.equal(res.code, 1, `${command}: ${res.stdout}${res.stderr}`);
      assert.match(res.stderr, new RegExp(`^error: no compozy\\.yaml in ${dir}$`, "m"), command);
      assert.match(res.stderr, /--cwd <dir>/, command);
      assert.match(res.stderr, /compozy init <dir>/, command);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
