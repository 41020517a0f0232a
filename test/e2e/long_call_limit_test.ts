/**
 * A tool whose time limit is past setTimeout's bound (2^31 − 1 ms, about 24.8 days) runs: the engine and the
 * runtime time a call with setTimeout, which fires at once past that bound, so a tool with `timeout: 30d`
 * failed at once as runtime_unavailable ("vanished 3 times"). The call's limit is capped below the bound.
 */
import assert from "node:assert/strict";
import { startDevOn } from "./support/dev_server.ts";

Deno.test({
  name: "a tool with timeout: 30d runs to its result",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const dev = await startDevOn({
      "compozy.yaml": "name: month\nworkflows:\n  - source: ./w.yaml\n",
      "w.yaml":
        "id: w\ntools:\n  - id: nap\n    execute: ./tools/nap.ts\n    timeout: 30d\ntasks:\n  - id: n\n    use: tool(id=nap)\n",
      "tools/nap.ts":
        "export default async () => {\n  await new Promise((r) => setTimeout(r, 300));\n  return { ok: true };\n};\n",
    });
    try {
      const state = await dev.run("w");
      assert.equal(state.status, "SUCCESS", JSON.stringify(state.error));
      assert.deepEqual(state.output, { ok: true });
    } finally {
      await dev.close();
    }
  },
});
