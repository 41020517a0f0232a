/**
 * A collection's replay takes the items and the kept indexes its first run rendered (outside review E2, the
 * collection half): the replay rendered `items` and `filter` again, and a filter that reads `now()` (or a
 * definition changed between the run and its replay) dropped items that had run, recorded them CANCELED, and
 * the collection's output lost them. Real engine, real nats-server; each item's sleep parks the execution and
 * its wake-up replays it after the input's time has passed.
 */
import assert from "node:assert/strict";
import type { BusMessage } from "../../pkg/nats/mod.ts";
import { TaskExecutionStartedSchema } from "../../pkg/pb/mod.ts";
import { run, withEngine } from "../support/flows.ts";

Deno.test("a collection's replay after a park keeps the items its first run rendered and kept", async () => {
  await withEngine(
    `tasks:
  - id: c
    type: collection
    items: [1, 2, 3]
    filter: '{{ now() < .workflow.input.t || .item == 1 }}'
    task:
      id: it
      type: composite
      tasks:
        - { id: it1, use: tool(id=echo), with: { v: "{{ .item }}" } }
        - { id: its, type: sleep, duration: 4s }
      outputs: { v: "{{ .tasks.it1.output.v }}" }
    final: true
`,
    async (h, calls) => {
      // The filter keeps all three now; the wake-up after the sleeps replays it once `t` has passed.
      const state = await run(h, { t: new Date(Date.now() + 3_000).toISOString() });
      assert.equal(state.status, "SUCCESS", JSON.stringify(state.error));
      assert.equal(calls.length, 3, `each item's tool runs once: ${JSON.stringify(calls)}`);
      assert.deepEqual(state.output, [{ v: 1 }, { v: 2 }, { v: 3 }]);
      const events = await h.engine.client.events(state.exec_id);
      const canceled = events.filter((e) => e.type === "task.canceled");
      assert.deepEqual(canceled, [], "no item that ran is recorded canceled");
      // The collection's start records what it rendered (its state's and its history's input).
      const started = events.find((e) =>
        e.type === "task.started" && (e.data as { task?: { id?: string } }).task?.id === "c"
      );
      const input = (started?.data as { input?: unknown } | undefined)?.input;
      assert.deepEqual(input, { items: [1, 2, 3], kept: [0, 1, 2] }, JSON.stringify(started));
    },
  );
});

Deno.test("a collection's start is stored before its items run: one lost on its way does not change the replay", async () => {
  await withEngine(
    `tasks:
  - id: c
    type: collection
    items: [1, 2, 3]
    filter: '{{ now() < .workflow.input.t || .item == 1 }}'
    task:
      id: it
      type: composite
      tasks:
        - { id: it1, use: tool(id=echo), with: { v: "{{ .item }}" } }
        - { id: its, type: sleep, duration: 4s }
      outputs: { v: "{{ .tasks.it1.output.v }}" }
    final: true
`,
    async (h, calls) => {
      // The collection's start, sent without waiting for the stream's acknowledgement (as on main), is lost
      // on its way (a connection dropped with it in the socket's buffer): the engine is told nothing.
      const publishCore = h.bus.publishCoreIfFits.bind(h.bus);
      h.bus.publishCoreIfFits = (message: BusMessage) => {
        const started = message.$typeName === TaskExecutionStartedSchema.typeName &&
          (message as { task?: { id?: string } }).task?.id === "c";
        return started ? true : publishCore(message);
      };
      const state = await run(h, { t: new Date(Date.now() + 3_000).toISOString() });
      assert.equal(state.status, "SUCCESS", JSON.stringify(state.error));
      assert.equal(calls.length, 3, `each item's tool runs once: ${JSON.stringify(calls)}`);
      // Before the fix: [{v: 1}, null, null], items 2 and 3 recorded canceled.
      assert.deepEqual(state.output, [{ v: 1 }, { v: 2 }, { v: 3 }]);
    },
  );
});
