/**
 * A replay takes the route its router's record names (outside review E2): the router's replay rendered its
 * condition again, and a condition that reads `now()` (or a definition changed between the run and its replay)
 * took the other route after a park, so both routes' tools ran and the output read the wrong one. Real engine,
 * real nats-server; the sleep parks the execution and its wake-up replays it.
 */
import assert from "node:assert/strict";
import { run, withEngine } from "../support/flows.ts";

Deno.test("a router's replay after a park takes the recorded route, not a new rendering", async () => {
  await withEngine(
    `tasks:
  - id: r
    type: router
    condition: '{{ now() < .workflow.input.t }}'
    routes: { "true": ta, "false": tb }
  - { id: ta, use: tool(id=echo), with: { v: a }, on_success: { next: s } }
  - { id: tb, use: tool(id=echo), with: { v: b }, on_success: { next: s } }
  - { id: s, type: sleep, duration: 3s }
  - id: fin
    type: aggregate
    final: true
    outputs: { a: '{{ .tasks.ta.status | default("none") }}', b: '{{ .tasks.tb.status | default("none") }}' }
`,
    async (h, calls) => {
      // The router renders true now; the wake-up after the sleep replays it once `t` has passed.
      const state = await run(h, { t: new Date(Date.now() + 2_000).toISOString() });
      assert.equal(state.status, "SUCCESS", JSON.stringify(state.error));
      assert.deepEqual(calls, ["ta"], "only the route the router took runs");
      assert.deepEqual(state.output, { a: "SUCCESS", b: "none" });
    },
  );
});
