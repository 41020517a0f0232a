/**
 * A collection's `filter` is strict like `if` (docs/yaml-reference.md): true/"true" keeps an item, false/"false"
 * drops it, and anything else fails the collection with template_error naming the task, the field and the item
 * (outside review: a filter rendering "yes" or an object silently dropped every item). `items` rendering to
 * null says null, not "object". Real engine, real nats-server.
 */
import assert from "node:assert/strict";
import { run, withEngine } from "../support/flows.ts";

const EACH = `tasks:
  - id: each
    type: collection
    items: "{{ .workflow.input.items }}"
    filter: "{{ .item.keep }}"
    task:
      id: one
      use: tool(id=echo)
      with: { n: "{{ .item.n }}" }
    on_error: { next: h }
  - { id: done, type: aggregate, outputs: { out: "{{ .tasks.each.output }}" }, final: true }
  - id: h
    type: aggregate
    outputs: { m: "{{ .error.message }}", code: "{{ .error.code }}" }
`;

Deno.test("a collection's filter is strict like `if`", async (t) => {
  await withEngine(EACH, async (h, calls) => {
    await t.step('true/"true" keep, false/"false" drop', async () => {
      const items = [{ n: 1, keep: true }, { n: 2, keep: "false" }, { n: 3, keep: "true" }, {
        n: 4,
        keep: false,
      }];
      const state = await run(h, { items });
      assert.equal(state.status, "SUCCESS", JSON.stringify(state.error));
      assert.deepEqual(state.output, { out: [{ n: 1 }, { n: 3 }] });
    });

    for (const bad of ["yes", 1, { a: 1 }, null]) {
      await t.step(
        `a filter rendering ${JSON.stringify(bad)} fails the collection naming the item`,
        async () => {
          calls.length = 0;
          const state = await run(h, { items: [{ n: 1, keep: true }, { n: 2, keep: bad }] });
          assert.equal(state.status, "SUCCESS", JSON.stringify(state.error));
          const out = state.output as { m: string; code: string };
          assert.equal(out.code, "template_error", JSON.stringify(out));
          assert.equal(
            out.m,
            `task 'each', field 'filter': must render true or false, got ${JSON.stringify(bad)} (item 1)`,
          );
          assert.deepEqual(calls, [], "no item runs when the filter cannot be read");
        },
      );
    }
  });
});

Deno.test("items rendering to null or an object says which", async () => {
  await withEngine(
    `tasks:
  - id: each
    type: collection
    items: "{{ .workflow.input.items }}"
    task: { id: one, use: tool(id=echo), with: { n: "{{ .item }}" } }
`,
    async (h) => {
      for (const [items, kind] of [[null, "null"], [{ a: 1 }, "an object"], ["x", "a string"]] as const) {
        const state = await run(h, { items });
        assert.equal(state.status, "FAILED");
        assert.equal(state.error?.code, "items_not_list");
        assert.equal(state.error?.message, `task 'each', field 'items': rendered to ${kind}, not a list`);
      }
    },
  );
});
