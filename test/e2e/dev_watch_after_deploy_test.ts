/**
 * `compozy dev --watch` after a deployment (`compozy deploy` to the dev server): a save in the watched project
 * folder loads that folder, as the "reloaded (<file>)" line says. Before, the reload loaded the deployed
 * bundle's folder again (the project last loaded), so every edit after a deployment was ignored while dev
 * printed "reloaded". Real `compozy dev` and `compozy deploy` processes, a real nats-server.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { FIXTURE_PROJECT, runCli, startDev } from "./support/dev_server.ts";

Deno.test({
  name: "dev --watch: after a deployment, a save in the watched folder loads that folder",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const key = "watch-deploy-key";
    const dev = await startDev({ fixture: FIXTURE_PROJECT, args: ["--watch", "--api-key", key] });
    const auth = { authorization: `Bearer ${key}` };
    try {
      await dev.waitForLine(/^watching /);
      const build = await runCli(["build", "--cwd", dev.dir, "--out", "dist"]);
      assert.equal(build.code, 0, build.stderr);
      const deploy = await runCli(["deploy", "--cwd", dev.dir, "--server", dev.url, "--api-key", key]);
      assert.equal(deploy.code, 0, deploy.stderr);

      await Deno.writeTextFile(
        join(dev.dir, "workflows/added.yaml"),
        "id: added\ntasks:\n  - { id: nap, type: sleep, duration: 1ms }\n",
      );
      const compozyYaml = join(dev.dir, "compozy.yaml");
      await Deno.writeTextFile(
        compozyYaml,
        (await Deno.readTextFile(compozyYaml)).replace(
          "  - source: ./workflows/slow.yaml\n",
          "  - source: ./workflows/slow.yaml\n  - source: ./workflows/added.yaml\n",
        ),
      );
      await dev.waitForLine(/^reloaded \(.*compozy\.yaml.*\): 4 workflow\(s\)/);
      const res = await dev.fetch("/api/workflows/added", { headers: auth });
      const text = await res.text();
      assert.equal(res.status, 200, text);
      assert.equal(JSON.parse(text).id, "added");
    } finally {
      await dev.stop();
      await Deno.remove(dev.dir, { recursive: true });
    }
  },
});
