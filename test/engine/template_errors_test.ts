/**
 * Run-time template errors fail their task (docs/templates.md "Errors"): code template_error, the task and the
 * field in the message, the task recorded FAILED, its `on_error` applies. Outside review of 2026-12-03
 * (/work/wt/engbreak/FINDINGS.md), against a real engine on a real nats-server.
 */
import assert from "node:assert/strict";
import type { ExecutionState, TaskExecutionState } from "../../engine/mod.ts";
import { run, withEngine } from "../support/flows.ts";

function taskOf(state: ExecutionState, id: string): TaskExecutionState {
  const task = state.tasks.find((t) => t.task_id === id);
  assert.ok(task, `no task ${id} in ${state.tasks.map((t) => t.task_id).join(", ")}`);
  return task;
}

Deno.test("template errors fail their task", async (t) => {
  await t.step("F1: a template error in `if` fails the task; its on_error applies", async () => {
    await withEngine(
      `tasks:
  - { id: a, use: tool(id=echo), with: { v: 1 } }
  - id: b
    use: tool(id=echo)
    if: "{{ .tasks.a.output.nope }}"
    on_error: { next: h }
  - { id: c, type: aggregate, outputs: { never: true }, final: true }
  - id: h
    type: aggregate
    outputs: { m: "{{ .error.message }}", code: "{{ .error.code }}", bs: "{{ .tasks.b.status }}" }
`,
      async (h, calls) => {
        const state = await run(h);
        assert.equal(state.status, "SUCCESS", JSON.stringify(state.error));
        const out = state.output as { m: string; code: string; bs: string };
        assert.equal(out.code, "template_error");
        assert.equal(out.bs, "FAILED");
        assert.match(out.m, /^task 'b', field 'if': missing value at \.tasks\.a\.output\.nope/);
        const b = taskOf(state, "b");
        assert.equal(b.status, "FAILED");
        assert.equal(b.error?.code, "template_error");
        assert.deepEqual(calls, ["a"], "b's tool never runs");
      },
    );
  });

  await t.step("F1: without on_error the workflow fails with the task recorded FAILED", async () => {
    await withEngine(
      `tasks:
  - id: b
    use: tool(id=echo)
    if: "{{ .workflow.input.nope }}"
`,
      async (h) => {
        const state = await run(h);
        assert.equal(state.status, "FAILED");
        assert.equal(state.error?.code, "template_error");
        const b = taskOf(state, "b");
        assert.equal(b.status, "FAILED");
        assert.equal(b.error?.code, "template_error");
        assert.match(b.error?.message ?? "", /^task 'b', field 'if': /);
      },
    );
  });

  await t.step("F1: inside a collection item the items are recorded FAILED, not CANCELED", async () => {
    await withEngine(
      `tasks:
  - id: each
    type: collection
    items: [x, y]
    mode: sequential
    task:
      id: per
      use: tool(id=echo)
      if: "{{ .item.nope }}"
    on_error: { next: h }
  - id: h
    type: aggregate
    outputs: { code: "{{ .error.code }}" }
`,
      async (h) => {
        const state = await run(h);
        assert.equal(state.status, "SUCCESS", JSON.stringify(state.error));
        assert.deepEqual(state.output, { code: "template_error" });
        const items = state.tasks.filter((t) => t.task_id.startsWith("each["));
        assert.ok(items.length >= 1, `no item in ${state.tasks.map((t) => t.task_id).join(", ")}`);
        for (const item of items) {
          assert.equal(item.status, "FAILED", `${item.task_id}: ${JSON.stringify(item)}`);
          assert.equal(item.error?.code, "template_error");
        }
      },
    );
  });

  await t.step(
    "F2: an `if` that renders a number fails the task (template_error); true/false/strings work",
    async () => {
      await withEngine(
        `tasks:
  - { id: a, use: tool(id=echo), with: { v: 1, yes: true, no: "false" } }
  - { id: on, use: tool(id=echo), if: "{{ .tasks.a.output.yes }}", with: { k: on } }
  - { id: off, use: tool(id=echo), if: "{{ .tasks.a.output.no }}", with: { k: off } }
  - id: b
    use: tool(id=echo)
    if: "{{ .tasks.a.output.v }}"
    on_error: { next: h }
  - { id: c, type: aggregate, outputs: { never: true }, final: true }
  - id: h
    type: aggregate
    outputs: { m: "{{ .error.message }}", code: "{{ .error.code }}", bs: "{{ .tasks.b.status }}" }
`,
        async (h, calls) => {
          const state = await run(h);
          assert.equal(state.status, "SUCCESS", JSON.stringify(state.error));
          const out = state.output as { m: string; code: string; bs: string };
          assert.deepEqual({ code: out.code, bs: out.bs }, { code: "template_error", bs: "FAILED" });
          assert.equal(out.m, "task 'b', field 'if': must render true or false, got 1");
          assert.equal(taskOf(state, "off").status, "SKIPPED");
          assert.deepEqual(calls, ["a", "on"], "b's tool never runs");
        },
      );
    },
  );

  await t.step(
    "F4: a template error in a task's env is template_error naming the task and env.X",
    async () => {
      await withEngine(
        `tasks:
  - id: t
    use: tool(id=echo)
    with: { v: 1 }
    env: { X: "{{ .workflow.input.nope }}" }
    on_error: { next: h }
  - id: h
    type: aggregate
    outputs: { m: "{{ .error.message }}", code: "{{ .error.code }}" }
`,
        async (h, calls) => {
          const state = await run(h);
          assert.equal(state.status, "SUCCESS", JSON.stringify(state.error));
          const out = state.output as { m: string; code: string };
          assert.equal(out.code, "template_error");
          assert.match(out.m, /^task 't', field 'env\.X': missing value at \.workflow\.input\.nope/);
          assert.equal(taskOf(state, "t").attempts, 1, "a template error is not retried");
          assert.deepEqual(calls, [], "the tool never runs");
        },
      );
    },
  );

  await t.step(
    "D5: a template error in the workflow's outputs names the workflow's outputs, not the last task",
    async () => {
      await withEngine(
        `tasks:
  - { id: a, use: tool(id=echo), with: { v: 1 } }
  - { id: b, type: sleep, duration: 100ms }
outputs: { x: "{{ .tasks.a.output.nothere }}" }
`,
        async (h) => {
          const state = await run(h);
          assert.equal(state.status, "FAILED");
          assert.equal(state.error?.code, "template_error");
          assert.match(
            state.error?.message ?? "",
            /^workflow 'main', field 'outputs\.x': missing value at \.tasks\.a\.output\.nothere/,
          );
          const details = (state.error as { details?: Record<string, unknown> }).details ?? {};
          assert.equal(details.field, "outputs.x");
          assert.equal(details.task_id, undefined, `no task id: ${JSON.stringify(details)}`);
          assert.equal(taskOf(state, "b").status, "SUCCESS", "b itself succeeded");
        },
      );
    },
  );
});
