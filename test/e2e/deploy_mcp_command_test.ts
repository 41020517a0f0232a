/**
 * A bundle deployed over HTTP (`POST /api/admin/deployments`) may not declare an MCP `command:` server: such
 * a server runs unsandboxed as the server's user, so accepting one made the API key a key to a shell (red
 * team 4 F1 (d)). The server's operator may allow them with COMPOZY_ALLOW_DEPLOYED_MCP_COMMANDS=1. Against a
 * real `compozy dev`, with a bundle made by `compozy build` and sent by `compozy deploy`.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { copyProject, FIXTURE_PROJECT, runCli, startDev } from "./support/dev_server.ts";

const KEY = "deploy-mcp-key";

/** The e2e fixture with an MCP `command:` server, built into `dist/`; its folder. */
async function buildBundleWithCommandServer(): Promise<string> {
  const dir = await copyProject(FIXTURE_PROJECT);
  const config = join(dir, "compozy.yaml");
  await Deno.writeTextFile(
    config,
    (await Deno.readTextFile(config)) + "mcp:\n  - id: shell\n    command: /bin/sh\n    args: [-c, id]\n",
  );
  const build = await runCli(["build", "--cwd", dir, "--out", "dist"]);
  assert.equal(build.code, 0, build.stderr);
  return dir;
}

/**
 * The one build both tests deploy (`compozy deploy` only reads it), made at the first use while that test's
 * `compozy dev` starts; the second test removes it.
 */
let bundle: Promise<string> | undefined;
const bundleWithCommandServer = () => bundle ??= buildBundleWithCommandServer();

Deno.test({
  name: "a bundle deployed over HTTP with an MCP command: server is refused, naming the file and field",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const building = bundleWithCommandServer();
    const dev = await startDev({ fixture: FIXTURE_PROJECT, args: ["--api-key", KEY] });
    try {
      const bundled = await building;
      const deploy = await runCli(["deploy", "--cwd", bundled, "--server", dev.url, "--api-key", KEY]);
      // On the code before this check the deployment loaded (exit 0) and the agent could start /bin/sh.
      assert.equal(deploy.code, 1, deploy.stdout);
      const out = deploy.stdout + deploy.stderr;
      assert.match(out, /compozy\.yaml:12:\d+/, out);
      assert.match(out, /mcp\[0\]\.command/, out);
      assert.match(out, /COMPOZY_ALLOW_DEPLOYED_MCP_COMMANDS=1/, out);
      // The server kept its project.
      const state = await dev.run("hello", { name: "Ed" }, { headers: { authorization: `Bearer ${KEY}` } });
      assert.equal(state.status, "SUCCESS");
    } finally {
      await dev.stop();
      await Deno.remove(dev.dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "an operator who sets COMPOZY_ALLOW_DEPLOYED_MCP_COMMANDS=1 takes such a bundle",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const building = bundleWithCommandServer();
    const dev = await startDev({
      fixture: FIXTURE_PROJECT,
      args: ["--api-key", KEY],
      env: { COMPOZY_ALLOW_DEPLOYED_MCP_COMMANDS: "1" },
    });
    try {
      const deploy = await runCli(["deploy", "--cwd", await building, "--server", dev.url, "--api-key", KEY]);
      assert.equal(deploy.code, 0, deploy.stdout + deploy.stderr);
      assert.match(deploy.stdout, /deployed e2e to /);
    } finally {
      await dev.stop();
      await Deno.remove(dev.dir, { recursive: true });
      await Deno.remove(await building, { recursive: true });
    }
  },
});
