/** Health details: a part's JSON reply is shown as JSON fields, not as JSON inside a string. */
import assert from "node:assert/strict";
import { connectNats } from "../pkg/nats/mod.ts";
import { startTestNats } from "../test/support/nats.ts";
import { HEALTH_SUBJECTS, natsHealthCheck } from "./health.ts";
import { watchNatsLink } from "./nats_link.ts";

Deno.test({
  name: "natsHealthCheck: JSON replies become JSON details",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const nats = await startTestNats();
    const nc = await connectNats(nats.url);
    const encode = (value: unknown) => new TextEncoder().encode(JSON.stringify(value));
    const engine = nc.subscribe(HEALTH_SUBJECTS.engine, {
      callback: (_e, msg) => {
        msg.respond(encode({ ok: true, instance: "dev-1" }));
      },
    });
    const runtime = nc.subscribe(HEALTH_SUBJECTS.runtime, {
      callback: (_e, msg) => {
        msg.respond(encode({ status: "ok", detail: "3 workers" }));
      },
    });
    try {
      const report = await natsHealthCheck(nc, watchNatsLink(nc)).check();
      assert.equal(report.status, "ok");
      assert.deepEqual(report.components.engine, { status: "ok", detail: { ok: true, instance: "dev-1" } });
      assert.deepEqual(report.components.runtime, { status: "ok", detail: "3 workers" });
    } finally {
      engine.unsubscribe();
      runtime.unsubscribe();
      await nc.close();
      await nats.stop();
    }
  },
});
