/**
 * `compozy start` listens for SIGTERM before it starts anything: a supervisor that stops it while it is still
 * starting (systemd, Kubernetes) gets an orderly stop, exit 0, and the managed nats-server stops with it.
 * Before, the signal came before any listener and its default action killed the process in the middle of
 * its start, leaving the nats-server it had started running as an orphan.
 */
import assert from "node:assert/strict";
import { copyProject, FIXTURE_PROJECT, spawnCompozy } from "./support/dev_server.ts";
import { childNamed, gone, running } from "./support/processes.ts";

Deno.test({
  name: "start: SIGTERM while it starts is an orderly stop (exit 0), the managed nats-server included",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const dir = await copyProject(FIXTURE_PROJECT);
    const start = spawnCompozy(["start", "--role", "all", "--cwd", dir, "--port", "0"], {
      COMPOZY_LOG_LEVEL: "info",
    });
    let nats: number | undefined;
    try {
      // The managed server is the start's first step: the process is inside Stack.start now.
      nats = await childNamed(start.pid, "nats-server");
      Deno.kill(start.pid, "SIGTERM");
      const status = await start.status;
      assert.equal(
        status.code,
        0,
        `exit ${status.code} (signal ${status.signal})\n${start.lines.join("\n")}`,
      );
      assert.ok(await gone(nats), `nats-server ${nats} outlived start`);
    } finally {
      // Failed: the orphan would outlive the suite.
      if (nats && await running(nats)) Deno.kill(nats, "SIGKILL");
      await start.stop();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
