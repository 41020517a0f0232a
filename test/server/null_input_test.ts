/**
 * `{"input": null}` means "no input given", on a start and on a re-run alike (docs/api.md, "Routes"): a start
 * runs with `{}` (as an empty body does), and a re-run keeps the first execution's input (as `{}` does). Before,
 * a re-run with `"input": null` ran with `{}`, losing the first's input, while a re-run without the field kept
 * it. A real engine on a real nats-server behind real HTTP.
 */
import assert from "node:assert/strict";
import { callApi as call, withEngineApi } from "../support/engine_api.ts";

const FILES = {
  "compozy.yaml": "name: null-input\nworkflows:\n  - source: ./wf.yaml\n",
  "wf.yaml": `id: greet
config:
  input:
    type: object
    properties: { name: { type: string } }
tasks:
  - { id: nap, type: sleep, duration: 1ms }
outputs:
  seen: "{{ .workflow.input }}"
`,
};

Deno.test("an input of null is no input: a start runs with {}, a re-run keeps the first's input", async () => {
  await withEngineApi(FILES, async (base, h) => {
    const started = await call(`${base}/api/workflows/greet/executions`, "POST", '{"input": null}');
    assert.equal(started.status, 202, started.text);
    assert.deepEqual((await h.engine.client.waitForEnd(started.body.exec_id, 15_000)).input, {});

    const first = await call(`${base}/api/workflows/greet/executions`, "POST", '{"input": {"name": "Ada"}}');
    assert.equal(first.status, 202, first.text);
    await h.engine.client.waitForEnd(first.body.exec_id, 15_000);
    for (const body of ['{"input": null}', "{}", ""]) {
      const rerun = await call(`${base}/api/executions/${first.body.exec_id}/rerun`, "POST", body);
      assert.equal(rerun.status, 202, `${body}: ${rerun.text}`);
      const ended = await h.engine.client.waitForEnd(rerun.body.exec_id, 15_000);
      assert.deepEqual([ended.input, ended.rerun_of], [{ name: "Ada" }, first.body.exec_id], `body ${body}`);
    }
  });
});
