/**
 * A task's own `env` is part of what its templates read as `.env` (docs/templates.md: "the `env:` maps (agent
 * or tool, then task, then workflow, then project)"). Outside review brk-eng3: the task's `env` reached its
 * tool's process (and an agent's prompt) only, so `with: { region: "{{ .env.REGION }}" }` beside
 * `env: { REGION: eu }` rendered the workflow's value, silently, or failed `template_error` where only the task
 * set the name (while `compozy validate` counted it as set). Real engine on a real nats-server.
 */
import assert from "node:assert/strict";
import { run, waitForStatus, withEngine } from "../support/flows.ts";

Deno.test("a task's env is what its own templates read as .env", async (t) => {
  await t.step("with, if and outputs, also in a collection's item, over the workflow's env", async () => {
    await withEngine(
      {
        "compozy.yaml": "name: task-env\nenv: { C: project }\nworkflows:\n  - source: ./wf.yaml\n",
        "wf.yaml": `id: main
env: { A: workflow, B: workflow }
tools:
  - id: echo
    execute: ./t.ts
tasks:
  - id: one
    use: tool(id=echo)
    env: { B: task, D: "only-{{ .workflow.id }}" }
    if: "{{ .env.B == \\"task\\" }}"
    with: { a: "{{ .env.A }}", b: "{{ .env.B }}", c: "{{ .env.C }}", d: "{{ .env.D }}" }
    outputs: { b: "{{ .output.b }}", again: "{{ .env.B }}" }
  - id: each
    type: collection
    items: [x, y]
    task:
      id: item
      use: tool(id=echo)
      env: { B: "item-{{ .item }}" }
      with: { b: "{{ .env.B }}" }
  - id: after
    type: aggregate
    outputs: { one: "{{ .tasks.one.output }}", each: "{{ .tasks.each.output }}", b: "{{ .env.B }}" }
`,
        "t.ts": "export default (input: unknown) => input;\n",
      },
      async (h, calls) => {
        const state = await run(h);
        assert.equal(state.status, "SUCCESS", JSON.stringify(state.error));
        assert.deepEqual(state.output, {
          one: { b: "task", again: "task" },
          each: [{ b: "item-x" }, { b: "item-y" }],
          b: "workflow", // A task's env is its own: the next task reads the workflow's again.
        });
        assert.deepEqual(
          state.tasks.find((task) => task.task_id === "one")?.input,
          { a: "workflow", b: "task", c: "project", d: "only-main" },
        );
        assert.equal(calls.length, 3);
      },
    );
  });

  await t.step("a wait's condition reads its task's env", async () => {
    await withEngine(
      `env: { WANTED: other }
tasks:
  - id: w
    type: wait
    signal: go
    env: { WANTED: mine }
    condition: "{{ .signal.payload.ticket == .env.WANTED }}"
`,
      async (h) => {
        const { execId } = await h.engine.client.trigger("main", {});
        await waitForStatus(h, execId, "WAITING");
        await h.engine.client.signal(execId, "go", { ticket: "mine" });
        const state = await h.engine.client.waitForEnd(execId, 10_000);
        assert.equal(state.status, "SUCCESS", JSON.stringify(state.error));
        assert.deepEqual(state.output, { ticket: "mine" });
      },
    );
  });
});
