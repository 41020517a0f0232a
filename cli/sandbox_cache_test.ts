import assert from "node:assert/strict";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { CliError } from "./cli_error.ts";
import { type SandboxBundle, sha256Hex, writeSandboxModules } from "./sandbox_cache.ts";
import { buildSandboxBundle, BUNDLE_PATH, serializeSandboxBundle } from "../scripts/sandbox_bundle.ts";

const committed = (): Promise<SandboxBundle> => Deno.readTextFile(BUNDLE_PATH).then(JSON.parse);

Deno.test(
  "the committed cli/sandbox_modules.json is a fresh build of the sandbox's modules (run `deno task sandbox-bundle`)",
  async () => {
    assert.ok(
      await Deno.readTextFile(BUNDLE_PATH) === serializeSandboxBundle(await buildSandboxBundle()),
      "cli/sandbox_modules.json is stale: run `deno task sandbox-bundle`",
    );
  },
);

Deno.test("the sandbox's modules are written to the cache once, verified by SHA-256", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "compozy-sandbox-cache-" });
  try {
    const bundle = await committed();
    const modules = await writeSandboxModules(bundle, dir);

    await t.step("each file holds its module, named by its hash; the worker's files are listed", async () => {
      for (const [name, { sha256, source }] of Object.entries(bundle.modules)) {
        const stem = name.slice(0, name.lastIndexOf("."));
        const file = (await Array.fromAsync(Deno.readDir(dir))).find((e) => e.name.startsWith(`${stem}-`));
        assert.ok(file, `${name} written`);
        assert.ok(file.name.includes(sha256.slice(0, 16)));
        assert.equal(await Deno.readTextFile(join(dir, file.name)), source);
      }
      assert.match(modules.hostPath, /worker_host-[0-9a-f]{16}\.js$/);
      assert.deepEqual(modules.workerFiles, [
        fileURLToPath(modules.workerUrl),
        fileURLToPath(modules.lockdownUrl),
      ]);
    });

    await t.step("a file with the right hash is kept; a changed one is written again", async () => {
      const host = await Deno.stat(modules.hostPath);
      const worker = fileURLToPath(modules.workerUrl);
      await Deno.writeTextFile(worker, "export const serveTool = () => {}; // tampered\n");
      const again = await writeSandboxModules(bundle, dir);
      assert.deepEqual(again, modules);
      assert.equal((await Deno.stat(modules.hostPath)).ino, host.ino, "an intact file is not rewritten");
      assert.equal(
        await sha256Hex(await Deno.readFile(worker)),
        bundle.modules["tool_worker.js"].sha256,
      );
      const names = (await Array.fromAsync(Deno.readDir(dir))).map((e) => e.name);
      assert.equal(names.length, 3, `no temporary file is left: ${names}`);
    });

    await t.step("a bundle that does not match its hashes is refused", async () => {
      const damaged = structuredClone(bundle);
      damaged.modules["worker_host.js"].source += "\n// changed";
      await assert.rejects(
        writeSandboxModules(damaged, dir),
        (e) =>
          e instanceof CliError && /worker_host\.js in this build does not match its SHA-256/.test(e.message),
      );
    });

    await t.step("a folder that cannot be written is named, with COMPOZY_CACHE_DIR", async () => {
      const file = join(dir, "not-a-folder");
      await Deno.writeTextFile(file, "");
      await assert.rejects(
        writeSandboxModules(bundle, join(file, "sandbox")),
        (e) =>
          e instanceof CliError && e.message.includes(`to ${join(file, "sandbox")}:`) &&
          e.details.some((d) => d.includes("COMPOZY_CACHE_DIR")) && e.cause !== undefined,
      );
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
