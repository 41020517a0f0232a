/**
 * `compozy dev --watch` when a reload fails: dev says why and keeps the last good project running; the next
 * good save reloads. The trigger: a workflow `source:` that is a loop of symbolic links (ELOOP). Before
 * e49d05b the loader threw it, the error escaped the watcher's callback and ended dev; since b64b0b5 it is a
 * diagnostic (a ConfigError), whose reason may print a moment after the "not reloaded" line.
 */
import assert from "node:assert/strict";
import { join, resolve } from "node:path";
import { startDev } from "./support/dev_server.ts";

const HELLO = resolve(import.meta.dirname!, "../../examples/hello");

Deno.test({
  name: "dev --watch: a reload failing with a non-configuration error is reported, the last project runs on",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const dev = await startDev({ fixture: HELLO, args: ["--watch"] });
    const projectFile = join(dev.dir, "compozy.yaml");
    const good = await Deno.readTextFile(projectFile);
    const run = async () => (await dev.run("hello", { name: "Ada" })).status;
    try {
      await dev.waitForLine(/^watching /);
      const [a, b] = [join(dev.dir, "workflows/a.yaml"), join(dev.dir, "workflows/b.yaml")];
      await Deno.symlink(b, a);
      await Deno.symlink(a, b);
      await Deno.writeTextFile(projectFile, `${good}  - source: ./workflows/a.yaml\n`);
      // The watcher may take the links' creation as a change of its own, reloaded (and refused) before the
      // project file's: the line of the reload that saw compozy.yaml's change is the one that must come.
      await dev.waitForLine(/^not reloaded \(.*compozy\.yaml/);
      // The reason may come on a line of its own (a diagnostic), read a moment after the first.
      await dev.waitForLine(/symbolic links/);

      // Still running, on the last good project.
      assert.equal(await run(), "SUCCESS");

      await Deno.writeTextFile(projectFile, good);
      await dev.waitForLine(/^reloaded \(compozy\.yaml\): 1 workflow/);
      assert.equal(await run(), "SUCCESS");
    } finally {
      await dev.stop();
      await Deno.remove(dev.dir, { recursive: true });
    }
  },
});
