/**
 * `compozy dev --watch` when a folder of the project's files is moved away and back (`mv tools tools.old`):
 * a folder's name has no extension, so before nothing reloaded, and dev ran on saying nothing while the
 * project's tools could no longer load. Now it is a change like a save: dev says what is wrong, and reloads
 * once the folder is back. Real dev, real files.
 */
import assert from "node:assert/strict";
import { join, resolve } from "node:path";
import { startDev } from "./support/dev_server.ts";

const HELLO = resolve(import.meta.dirname!, "../../examples/hello");

Deno.test({
  name: "dev --watch: a folder of tool modules moved away is reported, and reloaded once it is back",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const dev = await startDev({ fixture: HELLO, args: ["--watch"] });
    const tools = join(dev.dir, "workflows/tools");
    try {
      await dev.waitForLine(/^watching /);
      await Deno.rename(tools, `${tools}.old`);
      const failed = await dev.waitForLine(/^not reloaded \(/);
      assert.match(failed, /^not reloaded \(workflows\/tools\): the project has errors/);
      await dev.waitForLine(/tools\[0\]\.execute: tool module not found: \.\/tools\/greet\.ts$/);
      await Deno.rename(`${tools}.old`, tools);
      await dev.waitForLine(/^reloaded \(workflows\/tools\): 1 workflow/);
      assert.equal((await dev.run("hello", { name: "Ada" })).status, "SUCCESS");
    } finally {
      await dev.stop();
      await Deno.remove(dev.dir, { recursive: true });
    }
  },
});
