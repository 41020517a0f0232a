/**
 * Ctrl-C at `compozy dev` (SIGINT to its whole process group, the managed nats-server and the runtime
 * included): an orderly stop that says "stopping…" and nothing alarming. nats-server gets the SIGINT too and
 * may exit before its clients have closed; that is expected then, not a warning about losing NATS.
 */
import assert from "node:assert/strict";
import { FIXTURE_PROJECT, startDev } from "./support/dev_server.ts";

Deno.test({
  name: "Ctrl-C stops compozy dev without warnings about NATS going away",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const dev = await startDev({ fixture: FIXTURE_PROJECT, env: { COMPOZY_LOG_LEVEL: "info" } });
    try {
      const res = await dev.fetch("/api/workflows/hello/executions?wait=30s", {
        method: "POST",
        body: JSON.stringify({ input: { name: "Ann" } }),
        headers: { "content-type": "application/json" },
      });
      assert.equal((await res.json()).status, "SUCCESS");
      const status = await dev.interrupt();
      assert.equal(status.code, 0, dev.lines.join("\n"));
      const stopping = dev.lines.findIndex((l) => /stopping…/.test(l));
      assert.ok(stopping >= 0, "dev says it is stopping");
      const after = dev.lines.slice(stopping);
      const alarming = after.filter((l) => /"level":"(warning|warn|error|fatal)"/.test(l));
      assert.deepEqual(alarming, [], `no warning while stopping:\n${after.join("\n")}`);
      assert.ok(!after.some((l) => /Lost the connection to NATS|NATS is unreachable/.test(l)));
    } finally {
      await dev.stop();
      await Deno.remove(dev.dir, { recursive: true });
    }
  },
});
