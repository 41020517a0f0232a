/**
 * A project inside a folder whose own compozy.yaml does not parse (an old project above it; the server's
 * project above a deployment under `.compozy/deployments/`): which `env_file` that file names is unknown, so
 * the sandbox gives the project's tools no file grant (pkg/runtime/grant_paths.ts). `compozy validate` says so
 * as an error naming that file, exit 1. Before, the permission check let the sandbox's ToolFailure escape the
 * loader: `validate` ended with "internal error" (exit 2), and `compozy dev --watch` on a deployment died on
 * the first save of a compozy.yaml with a typo in it.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { runCli } from "../e2e/support/dev_server.ts";

Deno.test("a compozy.yaml that does not parse in a folder above the project is an error naming it", async () => {
  const outer = await Deno.makeTempDir({ prefix: "compozy-broken-parent-" });
  try {
    await Deno.writeTextFile(join(outer, "compozy.yaml"), "name: outer\nworkflows: [\n");
    const app = join(outer, "app");
    await Deno.mkdir(join(app, "tools"), { recursive: true });
    await Deno.writeTextFile(join(app, "compozy.yaml"), "name: app\nworkflows:\n  - source: ./wf.yaml\n");
    await Deno.writeTextFile(
      join(app, "wf.yaml"),
      "id: main\ntools:\n  - { id: t, execute: ./tools/t.ts }\ntasks:\n  - { id: a, use: tool(id=t) }\n",
    );
    await Deno.writeTextFile(join(app, "tools/t.ts"), "export default () => ({});\n");

    const result = await runCli(["validate", "--cwd", app]);
    assert.equal(result.code, 1, result.stdout + result.stderr);
    const out = result.stdout + result.stderr;
    assert.doesNotMatch(out, /internal error/);
    assert.match(
      out,
      new RegExp(`^compozy\\.yaml:1:1: .*${join(outer, "compozy.yaml")}.*no file grant`, "m"),
    );
    assert.equal(out.trim().split("\n").length, 1, out);
  } finally {
    await Deno.remove(outer, { recursive: true });
  }
});
