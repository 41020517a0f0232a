/**
 * A retry's back-off is a durable timer in TASK_CMDS, like a sleep (outside review F7's rest): a pause during
 * it holds the next attempt back until the resume, and the timer is in the stream while the back-off runs
 * (so `compozy_timers_scheduled` counts it). Real engine, real nats-server, the scripted `flaky` tool (fails
 * retryably on its first two calls).
 */
import assert from "node:assert/strict";
import { jetstreamManager } from "@nats-io/jetstream";
import { STREAMS } from "../../pkg/nats/mod.ts";
import { withEngine } from "../support/flows.ts";
import { until } from "../support/until.ts";

Deno.test("a pause during a retry's back-off holds the next attempt until the resume", async () => {
  await withEngine(
    `tasks:
  - id: a
    use: tool(id=flaky)
    retry: { max_attempts: 3, backoff: { initial: 2s, max: 2s, factor: 1 } }
`,
    async (h) => {
      const { client } = h.engine;
      const { execId } = await client.trigger("main", {});
      const started = async () =>
        (await client.events(execId)).filter((e) => e.type === "task.started").map((e) =>
          (e.data as { attempt?: number }).attempt ?? 1
        );
      await until(
        async () => (await client.events(execId)).some((e) => e.type === "task.retry_scheduled"),
        30_000,
      );
      // The back-off's timer is stored (before its record) and waits in TASK_CMDS.
      const jsm = await jetstreamManager(h.nc);
      const timers = await jsm.streams.getMessage(STREAMS.taskCommands, {
        last_by_subj: `compozy.${execId}.task.cmds.*.resume`,
      } as never).catch(() => null);
      assert.ok(timers, "no timer in TASK_CMDS during the back-off");
      await client.pause(execId);
      await until(async () => (await client.get(execId))?.status === "PAUSED", 30_000);
      // Well past the 2 s back-off: attempt 2 has not started.
      await new Promise((r) => setTimeout(r, 4_000));
      assert.deepEqual(await started(), [1]);
      await client.resume(execId);
      const state = await client.waitForEnd(execId, 30_000);
      assert.equal(state.status, "SUCCESS", JSON.stringify(state.error));
      assert.deepEqual(await started(), [1, 2, 3]);
    },
  );
});
