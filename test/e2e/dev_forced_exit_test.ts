/**
 * A forced stop of `compozy dev` leaves nothing behind: a second SIGTERM sent to dev's pid alone (not to its
 * process group, as a supervisor or `kill PID` twice does) exits at once with 130, and the managed
 * nats-server, which got no signal of its own, goes with it instead of living on as an orphan that holds its
 * port and the project's store.
 */
import assert from "node:assert/strict";
import { FIXTURE_PROJECT, startDev } from "./support/dev_server.ts";
import { childrenNamed, gone, running } from "./support/processes.ts";

Deno.test({
  name: "dev: a second SIGTERM to dev's pid exits 130 and takes the managed nats-server with it",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const dev = await startDev({ fixture: FIXTURE_PROJECT });
    let runtime: number | undefined;
    let nats: number | undefined;
    try {
      [nats] = await childrenNamed(dev.pid, "nats-server");
      assert.ok(nats, "dev runs a managed nats-server as its child");
      // A stopped runtime holds the orderly stop for its 5 s grace, so the second signal surely finds dev
      // stopping (two signals sent back to back may arrive as one).
      [runtime] = await childrenNamed(dev.pid, "deno");
      assert.ok(runtime, "dev runs the runtime as its child");
      Deno.kill(runtime, "SIGSTOP");
      Deno.kill(dev.pid, "SIGTERM");
      await dev.waitForLine(/stopping…/);
      Deno.kill(dev.pid, "SIGTERM");
      const status = await dev.status;
      assert.equal(status.code, 130, dev.lines.join("\n"));
      // The kill is sent before dev exits; the server's own exit follows within moments.
      assert.ok(await gone(nats), `nats-server ${nats} outlived dev`);
    } finally {
      // The runtime exits when its stdin (held by dev) closes, once it runs again.
      if (runtime && await running(runtime)) Deno.kill(runtime, "SIGCONT");
      // Failed: the orphan would outlive the suite.
      if (nats && await running(nats)) Deno.kill(nats, "SIGKILL");
      await dev.stop();
      await Deno.remove(dev.dir, { recursive: true });
    }
  },
});
