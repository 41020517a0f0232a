/**
 * `compozy dev --watch` when the engine does not start on a reloaded project: NATS stops answering (its server
 * frozen by SIGSTOP, as under a host's memory pressure) after the project loaded and the old engine stopped.
 * Before, dev said "the previous definitions stay in use" while no engine ran at all: a workflow started
 * afterwards failed "No engine answered the trigger" until dev was restarted. Now the engine starts again on
 * the previous project once NATS answers, and dev says so. Real dev, real managed nats-server.
 */
import assert from "node:assert/strict";
import { join, resolve } from "node:path";
import { startDev } from "./support/dev_server.ts";
import { childNamed } from "./support/processes.ts";

const HELLO = resolve(import.meta.dirname!, "../../examples/hello");

Deno.test({
  name:
    "dev --watch: a reload whose engine does not start leaves the engine running on the last good project",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const dev = await startDev({ fixture: HELLO, args: ["--watch"] });
    const nats = await childNamed(dev.pid, "nats-server");
    let frozen = false;
    const run = async () => (await dev.run("hello", { name: "Ada" })).status;
    const description = async () => (await (await dev.fetch("/api/workflows/hello")).json()).description;
    try {
      await dev.waitForLine(/^watching /);
      assert.equal(await run(), "SUCCESS");
      const workflow = join(dev.dir, "workflows/hello.yaml");
      const good = await Deno.readTextFile(workflow);
      const previous = await description();
      const saved = good.replace(/^description: .*$/m, "description: saved while NATS did not answer");
      const before = dev.lines.length;
      Deno.kill(nats, "SIGSTOP");
      frozen = true;
      await Deno.writeTextFile(workflow, saved);
      // The engine stopped and the new one timed out: NATS answers again while the previous one restarts.
      await dev.waitForLine(/The engine did not start on the reloaded project|^not reloaded \(/, 120_000);
      Deno.kill(nats, "SIGCONT");
      frozen = false;
      const failed = await dev.waitForLine(/^not reloaded \(/, 120_000);
      // Before: no engine ran, the trigger failed after 60 s "No engine answered".
      assert.equal(await run(), "SUCCESS", dev.lines.slice(before).join("\n"));
      assert.equal(await description(), previous);
      const said = dev.lines.slice(before).join("\n");
      assert.match(
        failed,
        /^not reloaded \(workflows\/hello\.yaml\): the engine did not start on the new definitions \(.+\); it was started again on the previous ones; the previous definitions stay in use$/,
        said,
      );

      // The next save reloads.
      await Deno.writeTextFile(workflow, `${saved}# saved again\n`);
      await dev.waitForLine(/^reloaded \(workflows\/hello\.yaml\): 1 workflow/, 60_000);
      assert.equal(await description(), "saved while NATS did not answer");
      assert.equal(await run(), "SUCCESS");
    } finally {
      if (frozen) Deno.kill(nats, "SIGCONT");
      await dev.stop();
      await Deno.remove(dev.dir, { recursive: true });
    }
  },
});
