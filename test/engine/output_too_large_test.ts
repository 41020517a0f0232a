/**
 * An outcome larger than the server's max_payload (8 MiB here) fails with output_too_large instead of
 * replaying forever (outside review F5, /work/wt/engbreak/FINDINGS.md). Real engine, real nats-server.
 */
import assert from "node:assert/strict";
import { run, withEngine } from "../support/flows.ts";

const big = { s: "x".repeat(3 * 1024 * 1024) };

Deno.test("an outcome too large to record", async (t) => {
  await t.step("F5: an aggregate of 9 MiB fails output_too_large; its on_error runs", async () => {
    await withEngine(
      `tasks:
  - { id: x, use: tool(id=echo), with: { s: "{{ .workflow.input.s }}" } }
  - id: a
    type: aggregate
    outputs: { a: "{{ .tasks.x.output }}", b: "{{ .tasks.x.output }}", c: "{{ .tasks.x.output }}" }
    on_error: { next: h }
  - { id: ok, type: aggregate, outputs: { never: true }, final: true }
  - { id: h, type: aggregate, outputs: { code: "{{ .error.code }}", as: "{{ .tasks.a.status }}" } }
`,
      async (h) => {
        const state = await run(h, big, 60_000);
        assert.equal(state.status, "SUCCESS", JSON.stringify(state.error));
        assert.deepEqual(state.output, { code: "output_too_large", as: "FAILED" });
        const events = await h.engine.client.events(state.exec_id);
        assert.equal(events.filter((e) => e.type === "workflow.taken_over").length, 0, "no replay loop");
      },
    );
  });

  await t.step(
    "F5: a collection of three 3 MiB outputs fails naming the task, the size and the limit",
    async () => {
      await withEngine(
        `tasks:
  - id: c
    type: collection
    items: [1, 2, 3]
    task: { id: one, use: tool(id=echo), with: { s: "{{ .workflow.input.s }}" } }
    on_error: { next: h }
  - { id: ok, type: aggregate, outputs: { never: true }, final: true }
  - { id: h, type: aggregate, outputs: { m: "{{ .error.message }}", code: "{{ .error.code }}" } }
`,
        async (h) => {
          const state = await run(h, big, 60_000);
          assert.equal(state.status, "SUCCESS", JSON.stringify(state.error));
          const out = state.output as { m: string; code: string };
          assert.equal(out.code, "output_too_large");
          const m = /^task 'c' output is (\d+) bytes encoded, over the bus limit of (\d+) bytes/.exec(out.m);
          assert.ok(m, out.m);
          assert.ok(Number(m[1]) > 9 * 1024 * 1024 && Number(m[2]) < 8 * 1024 * 1024, out.m);
          const c = state.tasks.find((t) => t.task_id === "c");
          assert.equal(c?.status, "FAILED");
          assert.equal(c?.attempts, 1, "not retried");
        },
      );
    },
  );

  await t.step("F5: workflow outputs of 9 MiB fail the workflow with output_too_large", async () => {
    await withEngine(
      `tasks:
  - { id: x, use: tool(id=echo), with: { s: "{{ .workflow.input.s }}" } }
outputs: { a: "{{ .tasks.x.output }}", b: "{{ .tasks.x.output }}", c: "{{ .tasks.x.output }}" }
`,
      async (h) => {
        const state = await run(h, big, 60_000);
        assert.equal(state.status, "FAILED");
        assert.equal(state.error?.code, "output_too_large");
        assert.match(state.error?.message ?? "", /^workflow 'main' outputs is \d+ bytes encoded/);
      },
    );
  });
});
