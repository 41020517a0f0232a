/**
 * A `script` MCP server granted nothing wrote to disk: the Cache API and `localStorage` persist under Deno's
 * cache (`<DENO_DIR>/location_data/`, keyed by the script's path) with no `write` grant, the Cache API with
 * no bound (a disk to fill from the runtime's user) and both kept from one agent call to the next (issue 10,
 * sbx). The tool worker had `caches` removed already, and a worker has no `localStorage`. A real `deno run`
 * of the script, as the runtime starts it, with a `DENO_DIR` of its own to look into.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { scriptCommand } from "../../pkg/runtime/mcp/mcp_transport.ts";

Deno.test("a script MCP server persists nothing without a write grant: no Cache API, no localStorage", async () => {
  const root = await Deno.makeTempDir({ prefix: "compozy-script-storage-" });
  try {
    await Deno.writeTextFile(join(root, "compozy.yaml"), "name: mcp\n");
    const script = join(root, "server.ts");
    await Deno.writeTextFile(
      script,
      `const out: Record<string, string> = {};
       try {
         const cache = await caches.open("c");
         await cache.put("http://example.com/", new Response("kept"));
         out.caches = "stored";
       } catch (e) {
         out.caches = (e as Error).name;
       }
       try {
         localStorage.setItem("k", "kept");
         out.localStorage = "stored";
       } catch (e) {
         out.localStorage = (e as Error).name;
       }
       console.log(JSON.stringify(out));`,
    );
    const denoDir = join(root, "deno_dir");
    const { command, args } = await scriptCommand({ id: "s", script, timeoutMs: 5_000, cwd: root }, script);
    const ran = await new Deno.Command(command, {
      args,
      cwd: root,
      env: { DENO_DIR: denoDir },
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.equal(ran.code, 0, new TextDecoder().decode(ran.stderr));
    // Before: {"caches": "stored", "localStorage": "stored"}, and files under <DENO_DIR>/location_data.
    assert.deepEqual(JSON.parse(new TextDecoder().decode(ran.stdout)), {
      caches: "ReferenceError",
      localStorage: "ReferenceError",
    });
    const stored = await Deno.stat(join(denoDir, "location_data")).then(() => true, () => false);
    assert.equal(stored, false, "nothing was written under DENO_DIR/location_data");
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
