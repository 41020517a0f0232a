/**
 * A `wait_all` parallel and a collection fail with the error of the child whose failure was recorded first, also
 * when their end is decided on a replay (model finding G11, seed 96020): the replay got the recorded outcomes
 * back in the order it reached them (the definition's), so a child declared first and failed last gave the
 * container its error after a park, where the first run would have given the other's. Real engine, real
 * nats-server: `early` fails at once, `late` (declared first) times out at 500 ms, and a 2 s sleep keeps the
 * container open, so its end comes from the replay of the sleep's wake-up.
 */
import assert from "node:assert/strict";
import { run, withEngine } from "../support/flows.ts";

Deno.test("a wait_all parallel decided on a replay fails with the failure recorded first", async () => {
  await withEngine(
    `tasks:
  - id: par
    type: parallel
    tasks:
      - { id: late, type: wait, signal: never, timeout: 500ms }
      - { id: early, use: tool(id=boom) }
      - { id: nap, type: sleep, duration: 2s }
`,
    async (h) => {
      const state = await run(h, {}, 30_000);
      assert.equal(state.status, "FAILED");
      assert.equal(state.error?.code, "tool_threw", JSON.stringify(state.error));
      assert.match(state.error?.message ?? "", /^par\/early: /);
      const events = await h.engine.client.events(state.exec_id);
      const failed = events.filter((e) => e.type === "task.failed").map((e) =>
        (e.data as { task?: { id?: string } }).task?.id
      );
      assert.deepEqual(failed.slice(0, 2), ["par/early", "par/late"], "early's failure is recorded first");
    },
  );
});

Deno.test("a collection decided on a replay fails with the item failure recorded first", async () => {
  await withEngine(
    `tasks:
  - id: each
    type: collection
    items: [late, early, nap]
    task:
      id: one
      type: composite
      tasks:
        - { id: w, type: wait, signal: never, timeout: 500ms, if: '{{ .item == "late" }}' }
        - { id: b, use: tool(id=boom), if: '{{ .item == "early" }}' }
        - { id: s, type: sleep, duration: 2s, if: '{{ .item == "nap" }}' }
`,
    async (h) => {
      const state = await run(h, {}, 30_000);
      assert.equal(state.status, "FAILED");
      assert.equal(state.error?.code, "tool_threw", JSON.stringify(state.error));
      assert.match(state.error?.message ?? "", /^each\/\[1\]: /);
    },
  );
});
