/**
 * `!`, `&&` and `||` read the strings "true" and "false" as `if` reads them (outside review eng40): `.env`
 * values are strings, and `if: "{{ !.env.SKIP_A }}"` with `SKIP_A: "false"` skipped the task (`!` of a
 * non-empty string), while `if: "{{ .env.ON }}"` with `ON: "false"` skipped it and `"{{ .env.ON && true }}"`
 * ran it. Real engine, real nats-server.
 */
import assert from "node:assert/strict";
import { run, withEngine } from "../support/flows.ts";

Deno.test("logic operators read the strings true and false of .env as if does", async () => {
  await withEngine(
    `env: { SKIP_A: "false", ON: "false" }
tasks:
  - { id: a, use: tool(id=echo), with: { v: 1 }, if: "{{ !.env.SKIP_A }}" }
  - { id: b, use: tool(id=echo), with: { v: 2 }, if: "{{ .env.ON && true }}" }
  - { id: c, use: tool(id=echo), with: { v: 3 }, if: "{{ .env.ON }}" }
  - { id: d, use: tool(id=echo), with: { v: 4 }, if: "{{ .env.ON || .env.SKIP_A }}" }
`,
    async (h) => {
      const state = await run(h);
      assert.equal(state.status, "SUCCESS", JSON.stringify(state.error));
      // On main: a:SKIPPED b:SUCCESS c:SKIPPED d:SUCCESS.
      assert.deepEqual(
        state.tasks.map((t) => `${t.task_id}:${t.status}`),
        ["a:SUCCESS", "b:SKIPPED", "c:SKIPPED", "d:SKIPPED"],
      );
    },
  );
});
