/**
 * A sub-workflow whose input (its task's rendered `with:`) fails the child's `config.input` fails the task
 * with `validation_failed`, and the error's message names each failing field as an HTTP start's 422 does: the
 * message is all `compozy run --wait`, `compozy dev` and the console's headline show. A real engine on a real
 * nats-server behind real HTTP.
 */
import assert from "node:assert/strict";
import { callApi as call, withEngineApi } from "../support/engine_api.ts";

const FILES = {
  "compozy.yaml": "name: sub-input-error\nworkflows:\n  - source: ./kid.yaml\n  - source: ./caller.yaml\n",
  "kid.yaml": `id: kid
config:
  input:
    type: object
    properties: { n: { type: integer }, mode: { enum: [fast, slow] } }
    required: [n]
tasks:
  - { id: nap, type: sleep, duration: 1ms }
`,
  "caller.yaml": `id: caller
config:
  input: { type: object, properties: { n: { type: string }, mode: { type: string } } }
tasks:
  - id: child
    use: workflow(id=kid)
    with: { n: "{{ .workflow.input.n }}", mode: "{{ .workflow.input.mode }}" }
`,
};

Deno.test("a sub-workflow's refused input fails its task with a message naming every failing field", async () => {
  await withEngineApi(FILES, async (base) => {
    const res = await call(
      `${base}/api/workflows/caller/executions?wait=20s`,
      "POST",
      JSON.stringify({ input: { n: "seven", mode: "medium" } }),
    );
    assert.equal(res.status, 200, res.text);
    assert.equal(res.body.status, "FAILED", res.text);
    const task = res.body.tasks.find((t: { task_id: string }) => t.task_id === "child");
    assert.equal(task.status, "FAILED", res.text);
    assert.equal(task.error.code, "validation_failed");
    assert.deepEqual(task.error.details.fields, [
      { path: "/n", message: "must be integer" },
      { path: "/mode", message: "must be equal to one of the allowed values" },
    ]);
    assert.equal(
      task.error.message,
      "Input of workflow 'kid' is invalid: /n must be integer; /mode must be equal to one of the allowed values",
    );
    assert.equal(res.body.error.message, task.error.message);
  });
});
