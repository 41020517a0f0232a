/**
 * Delays longer than setTimeout takes (2^31-1 ms, about 24.86 days) are waited, not fired at once (outside
 * review F6, /work/wt/engbreak/FINDINGS.md). Real engine, real nats-server; no assertion is on timing.
 */
import assert from "node:assert/strict";
import { run, withEngine } from "../support/flows.ts";

Deno.test("long timers", async (t) => {
  await t.step("F6: a config.timeout of 60 days does not time the execution out at once", async () => {
    await withEngine(
      "config:\n  timeout: 60d\ntasks:\n  - id: s\n    type: sleep\n    duration: 1s\n  - id: a\n    use: tool(id=echo)\n    with: { v: 1 }\n",
      async (h) => {
        const state = await run(h);
        assert.equal(state.status, "SUCCESS", JSON.stringify(state.error));
        assert.deepEqual(state.output, { v: 1 });
      },
    );
  });

  await t.step("F6: a retry back-off of 30+ days does not start the next attempt at once", async () => {
    await withEngine(
      `tasks:
  - id: r
    use: tool(id=flaky)
    retry: { max_attempts: 2, backoff: { initial: 60d, max: 60d, factor: 1 } }
`,
      async (h) => {
        const { execId } = await h.engine.client.trigger("main", {});
        const deadline = Date.now() + 15_000;
        let events = await h.engine.client.events(execId);
        while (!events.some((e) => e.type === "task.retry_scheduled")) {
          assert.ok(Date.now() < deadline, "no retry scheduled");
          await new Promise((r) => setTimeout(r, 50));
          events = await h.engine.client.events(execId);
        }
        // Time for a wrongly clamped timer (1 ms) to start attempt 2 many times over.
        await new Promise((r) => setTimeout(r, 1_000));
        events = await h.engine.client.events(execId);
        const starts = events.filter((e) => e.type === "task.started").length;
        assert.equal(starts, 1, events.map((e) => e.type).join(", "));
        assert.equal((await h.engine.client.get(execId))?.status, "RUNNING");
        await h.engine.client.cancel(execId);
        assert.equal((await h.engine.client.waitForEnd(execId, 10_000)).status, "CANCELED");
      },
    );
  });
});
