/**
 * NATS goes away under a running `compozy dev` (pointed at an external server with NATS_URL): routes that
 * need it answer 503 at once instead of hanging, health says NATS is down, and everything works again once
 * the server is back on the same port and store.
 */
import assert from "node:assert/strict";
import { startTestNats } from "../support/nats.ts";
import { FIXTURE_PROJECT, startDev } from "./support/dev_server.ts";

Deno.test({
  name: "a NATS outage is a fast 503, and the API recovers with NATS",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const nats = await startTestNats();
    const dev = await startDev({ fixture: FIXTURE_PROJECT, env: { NATS_URL: nats.url } });
    const start = () =>
      dev.fetch("/api/workflows/hello/executions?wait=20s", {
        method: "POST",
        body: JSON.stringify({ input: { name: "Nat" } }),
        headers: { "content-type": "application/json" },
      });
    try {
      assert.equal((await (await start()).json()).status, "SUCCESS");
      await nats.server.kill();
      const deadline = Date.now() + 30_000;
      let health;
      do {
        health = await (await dev.fetch("/api/health")).json();
        await new Promise((r) => setTimeout(r, 50));
      } while (health.components.nats.status === "ok" && Date.now() < deadline);
      assert.equal(health.status, "unavailable");
      assert.match(health.components.nats.detail, /disconnected/);

      const res = await start();
      const body = await res.json();
      assert.equal(res.status, 503, JSON.stringify(body));
      assert.equal(body.error.code, "nats_unavailable");
      assert.equal(res.headers.get("retry-after"), "1");
      // Refused up front, from the connection's status: not a request sent and timed out (whose 503 says
      // "The message bus is unavailable: <the request's error>").
      assert.equal(body.error.message, "NATS is unreachable right now; retry shortly", "answered at once");
      assert.equal((await dev.fetch("/api/workflows")).status, 200, "definitions need no NATS");

      await nats.restart({ crash: true });
      const back = Date.now() + 30_000;
      while ((await (await dev.fetch("/api/health")).json()).status !== "ok") {
        assert.ok(Date.now() < back, "healthy again once NATS is back");
        await new Promise((r) => setTimeout(r, 100));
      }
      assert.equal((await (await start()).json()).status, "SUCCESS");
    } finally {
      await dev.stop();
      await Deno.remove(dev.dir, { recursive: true });
      await nats.stop();
    }
  },
});
