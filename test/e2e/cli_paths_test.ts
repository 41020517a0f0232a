/**
 * Where the CLI's file flags point (API.md "CLI": every command takes `--cwd DIR`): a relative path is read
 * against the project folder, an absolute one is taken as it is.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { runCli } from "./support/dev_server.ts";

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
