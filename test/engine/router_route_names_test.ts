/**
 * A router's condition may render any string, a workflow input's included: only the `routes` it declares
 * count (outside review brk-eng3 E4). A value naming a property every object inherits (`toString`,
 * `constructor`, `hasOwnProperty`) took that inherited function for a route, and the execution failed
 * `internal_error` ("Cannot read properties of undefined (reading 'replaysInput')") with a task of no id
 * recorded CANCELED, where `default` applies. Real engine on a real nats-server.
 */
import assert from "node:assert/strict";
import { withEngine } from "../support/flows.ts";

const WORKFLOW = `tasks:
  - id: r
    type: router
    condition: "{{ .workflow.input.kind }}"
    routes:
      a: ta
      constructor: tc
    default: td
  - { id: ta, use: tool(id=echo), with: { took: a }, final: true }
  - { id: tc, use: tool(id=echo), with: { took: constructor }, final: true }
  - { id: td, use: tool(id=echo), with: { took: default } }
`;

Deno.test("a router takes only the routes it declares; any other value goes to default", async () => {
  await withEngine(WORKFLOW, async (h) => {
    const { client } = h.engine;
    const outcomes: Record<string, unknown> = {};
    for (const kind of ["toString", "hasOwnProperty", "valueOf", "constructor", "a"]) {
      const { execId } = await client.trigger("main", { kind });
      const state = await client.waitForEnd(execId, 15_000);
      assert.equal(state.status, "SUCCESS", `${kind}: ${JSON.stringify(state.error)}`);
      assert.deepEqual(state.tasks.map((t) => t.status), ["SUCCESS", "SUCCESS"], `${kind}: two tasks ran`);
      outcomes[kind] = state.output;
    }
    assert.deepEqual(outcomes, {
      toString: { took: "default" },
      hasOwnProperty: { took: "default" },
      valueOf: { took: "default" },
      constructor: { took: "constructor" }, // Declared: an own key of `routes`.
      a: { took: "a" },
    });
  });
});
