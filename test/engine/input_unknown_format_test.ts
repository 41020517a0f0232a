/**
 * A workflow input schema with an unknown `format` (`format: emial`) is reported once, by `validate` and at
 * load, as a warning at its field (check_embedded_schemas.ts). Starting an execution prints nothing more:
 * before, the orchestrator's Ajv wrote "unknown format … ignored in schema" to the console at the first
 * trigger, a raw line in `compozy dev`'s live log. A real engine on a real nats-server.
 */
import assert from "node:assert/strict";
import { startEngineHarness } from "../support/engine.ts";

Deno.test("a trigger of a workflow whose input schema has an unknown format writes no raw validator line", async () => {
  const h = await startEngineHarness({
    "compozy.yaml": "name: unknown-format\nworkflows:\n  - source: ./wf.yaml\n",
    "wf.yaml":
      "id: main\nconfig:\n  input: { type: object, properties: { e: { type: string, format: emial } } }\n" +
      "tasks:\n  - { id: nap, type: sleep, duration: 1ms }\n",
  });
  const printed: string[] = [];
  const saved = { log: console.log, warn: console.warn, error: console.error };
  console.log = console.warn = console.error = (...args: unknown[]) => printed.push(args.join(" "));
  try {
    const { execId } = await h.engine.client.trigger("main", { e: "not checked" });
    assert.equal((await h.engine.client.waitForEnd(execId, 15_000)).status, "SUCCESS");
  } finally {
    Object.assign(console, saved);
    await h.close();
  }
  assert.deepEqual(printed.filter((line) => line.includes("unknown format")), []);
});
