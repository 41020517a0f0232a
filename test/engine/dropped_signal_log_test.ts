/**
 * A signal that no wait takes is dropped (CONFIG.md), and the log says so at info level, naming the execution
 * and the signal: the API only counts the waits for a signal, so the log is the one trace. A parked execution
 * said it already (workflow_executor.ts); one whose driver was running (a tool call under way) dropped it with
 * no line at all. Real nats-server, real engine.
 */
import assert from "node:assert/strict";
import { waitForStatus, withEngine } from "../support/flows.ts";
import { until } from "../support/until.ts";
import { withCapturedLog } from "../support/log_capture.ts";

const WF = `tasks:
  - { id: busy, use: tool(id=slow), with: { ms: 1500 } }
  - { id: hold, type: wait, signal: go }
`;

Deno.test({
  name: "a signal no wait listens for is logged as dropped (info), naming the execution and the signal",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await withCapturedLog(async (log) => {
      const dropped = (execId: string, signal: string) => log.records(execId, signal, "dropped");
      await withEngine(WF, async (h) => {
        const { execId } = await h.engine.client.trigger("main", {});
        // Running: its tool call is under way, the driver active (not parked).
        await until(async () =>
          (await h.engine.client.get(execId))?.tasks.some((t) => t.task_id === "busy") ?? false
        );
        await h.engine.client.signal(execId, "nobody", {});
        // Before the fix: no line, the wait below timed out.
        await until(() => Promise.resolve(dropped(execId, "nobody").length > 0), 5_000).catch(() => {});
        const running = dropped(execId, "nobody");
        assert.equal(running.length, 1, log.text());
        assert.equal(running[0].level, "info", JSON.stringify(running[0]));

        // Parked on its wait for another signal: said as well (this part held before the fix).
        await waitForStatus(h, execId, "WAITING");
        await h.engine.client.signal(execId, "nobody-else", {});
        await until(() => Promise.resolve(dropped(execId, "nobody-else").length > 0), 5_000).catch(() => {});
        const parked = dropped(execId, "nobody-else");
        assert.equal(parked.length, 1, log.text());
        assert.equal(parked[0].level, "info", JSON.stringify(parked[0]));

        // The signal it waits for is taken, and no drop is said of it.
        await h.engine.client.signal(execId, "go", {});
        assert.equal((await h.engine.client.waitForEnd(execId, 10_000)).status, "SUCCESS");
        assert.deepEqual(dropped(execId, "signal go "), [], log.text());
      });
    });
  },
});
