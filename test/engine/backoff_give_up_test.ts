/**
 * A branch given up (a decided race or fail_fast, a container's time-out) leaves no task of it open: one
 * waiting out a retry's back-off is recorded canceled at once, like one given up while its attempt runs
 * (docs/engine.md: the other branches are "CANCELED in the state"; a timed-out attempt's open children are
 * recorded canceled), and one not started yet is not dispatched. Outside review brk-eng3 E7 and E8: with no
 * attempt running, nothing recorded the give-up, so the task read RETRY_SCHEDULED (E7) or SCHEDULED (E8)
 * beside its decided parent for as long as the execution went on (here, parked on a wait), and its history
 * had no end for it. Real engine on a real nats-server; the back-offs (2.5 to 5 s) outlast the checks.
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

Deno.test("a race or fail_fast with max_workers leaves no child open after its decision", async () => {
  // Outside review brk-eng3 E8: the next child started as the decision came was dispatched after it, never
  // run and never ended, and read SCHEDULED while the execution went on (here, parked on a wait).
  await withEngine(
    `tasks:
  - id: r
    type: parallel
    strategy: race
    max_workers: 1
    tasks:
      - { id: ra, use: tool(id=boom) }
      - { id: rb, use: tool(id=echo), with: { won: rb } }
      - { id: rc, use: tool(id=echo), with: { won: rc } }
  - id: f
    type: parallel
    strategy: fail_fast
    max_workers: 1
    tasks:
      - { id: fa, use: tool(id=boom) }
      - { id: fb, use: tool(id=echo), with: { never: true } }
    on_error: { next: hold }
  - { id: unreachable, type: aggregate, outputs: {}, final: true }
  - { id: hold, type: wait, signal: never }
`,
    async (h, calls) => {
      const { client } = h.engine;
      const { execId } = await client.trigger("main", {});
      const state = async () => (await client.get(execId))!;
      await until(async () =>
        (await state()).tasks.some((t) => t.task_id === "hold" && t.status === "WAITING")
      );
      const tasks = (await state()).tasks.map((t) => `${t.task_id}:${t.status}`).sort();
      assert.deepEqual(tasks, [
        "f/fa:FAILED",
        "f:FAILED",
        "hold:WAITING",
        "r/ra:FAILED",
        "r/rb:SUCCESS",
        "r:SUCCESS",
      ]);
      assert.deepEqual(calls, ["r/rb"], "no child after a decision runs");
      const dispatched = (await client.events(execId))
        .filter((e) => e.type === "task.dispatched")
        .map((e) => (e.data as { task?: { id?: string } }).task?.id);
      assert.ok(!dispatched.includes("r/rc") && !dispatched.includes("f/fb"), dispatched.join(", "));
      await client.cancel(execId);
      assert.equal((await client.waitForEnd(execId, 10_000)).status, "CANCELED");
    },
  );
});
