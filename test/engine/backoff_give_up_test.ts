/**
 * A task given up while it waits out a retry's back-off is recorded canceled at once, like one given up while
 * its attempt runs (docs/engine.md: a decided fail_fast's other branches are "CANCELED in the state"; a
 * timed-out attempt's open children are recorded canceled). Outside review brk-eng3 E7: with no attempt
 * running, no runner recorded the give-up, so the task read RETRY_SCHEDULED beside its failed parent for as
 * long as the execution went on (here, parked on a wait), and its history had no end for it. Real engine on a
 * real nats-server; the back-offs (2.5 to 5 s) outlast the checks.
 */
import assert from "node:assert/strict";
import { withEngine } from "../support/flows.ts";
import { until } from "../support/until.ts";

const BACKOFF = "retry: { max_attempts: 5, backoff: { initial: 5s, max: 5s, factor: 1 } }";

Deno.test("a task given up during its retry's back-off reads CANCELED while the execution goes on", async () => {
  await withEngine(
    `tasks:
  - id: p
    type: parallel
    strategy: fail_fast
    tasks:
      - { id: retrying, use: tool(id=flaky), ${BACKOFF} }
      - id: dies
        type: composite
        tasks:
          - { id: first, use: tool(id=slow), with: { ms: 300 } }
          - { id: then, use: tool(id=boom) }
    on_error: { next: box }
  - { id: unreachable, type: aggregate, outputs: {}, final: true }
  - id: box
    type: composite
    timeout: 600ms
    tasks:
      - { id: inner, use: tool(id=flaky), ${BACKOFF} }
    on_error: { next: hold }
  - { id: hold, type: wait, signal: never }
`,
    async (h) => {
      const { client } = h.engine;
      const { execId } = await client.trigger("main", {});
      const statusOf = async (id: string) =>
        (await client.get(execId))?.tasks.find((t) => t.task_id === id)?.status;
      await until(async () => (await statusOf("hold")) === "WAITING", 10_000);
      assert.equal(await statusOf("p"), "FAILED");
      assert.equal(await statusOf("box"), "FAILED");
      // Given up in their back-offs (a decided fail_fast, a composite's time-out): canceled, not retried. The
      // state folds the give-up a moment after the flow moved on.
      const given = ["p/retrying", "box/inner"];
      const ended = async () =>
        (await Promise.all(given.map(statusOf))).every((s) => s !== "RETRY_SCHEDULED");
      await until(ended, 2_000).catch(() => {});
      assert.deepEqual(await Promise.all(given.map(statusOf)), ["CANCELED", "CANCELED"]);
      const canceled = (await client.events(execId))
        .filter((e) => e.type === "task.canceled")
        .map((e) => (e.data as { task?: { id?: string } }).task?.id);
      assert.deepEqual(canceled.sort(), [...given].sort());
      await client.cancel(execId);
      assert.equal((await client.waitForEnd(execId, 10_000)).status, "CANCELED");
    },
  );
});
