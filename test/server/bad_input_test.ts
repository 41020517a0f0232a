/**
 * Bad input at the API's door (outside review B12), over real HTTP against a real engine and nats-server:
 * ids in the path longer than any id are a 400 naming the parameter (not echoing it back), and a body nested
 * deeper than any tool output may be is a 400 naming the body, before anything is started or delivered.
 */
import assert from "node:assert/strict";
import type { EngineHarness } from "../support/engine.ts";
import { callApi as call, withEngineApi } from "../support/engine_api.ts";

const FILES = {
  "compozy.yaml": "name: bad-input\nworkflows:\n  - source: ./wf.yaml\n  - source: ./plain.yaml\n",
  // An input that must not be an expression tree whose operator branches both recurse into `args`.
  "plain.yaml": `id: plain
config:
  input:
    $defs:
      expr:
        anyOf:
          - { type: object, properties: { args: { type: array, items: { $ref: "#/$defs/expr" } }, op: { const: add } } }
          - { type: object, properties: { args: { type: array, items: { $ref: "#/$defs/expr" } }, op: { const: mul } } }
          - { type: number }
    not: { $ref: "#/$defs/expr" }
tasks:
  - id: w
    type: wait
    signal: go
    timeout: 5m
`,
  "wf.yaml": `id: wait
tasks:
  - id: w
    type: wait
    signal: go
    timeout: 5m
`,
};

function withApi(fn: (base: string, h: EngineHarness) => Promise<void>): Promise<void> {
  return withEngineApi(FILES, fn);
}

function nested(depth: number): string {
  return "[".repeat(depth) + "1" + "]".repeat(depth);
}

Deno.test("ids and bodies out of bounds are 400s naming what is wrong", async (t) => {
  await withApi(async (base, h) => {
    const { execId } = await h.engine.client.trigger("wait", {});

    await t.step("an id longer than any id is a 400 naming the parameter, not echoing it", async () => {
      const long = "a".repeat(5_000);
      for (
        const [method, path, param] of [
          ["POST", `/api/signals/${long}`, "signal_id"],
          ["POST", `/api/executions/${execId}/signals/${long}`, "signal_id"],
          ["GET", `/api/executions/${"b".repeat(10_000)}`, "exec_id"],
          ["GET", `/api/workflows/${long}`, "workflow_id"],
          ["GET", `/api/tools/${long}`, "id"],
        ]
      ) {
        const result = await call(`${base}${path}`, method, method === "POST" ? "{}" : undefined);
        assert.equal(result.status, 400, `${method} ${path.slice(0, 40)}…: ${result.text.slice(0, 300)}`);
        assert.equal(result.body.error.code, "validation_failed");
        assert.ok(result.body.error.message.includes(param), result.body.error.message);
        assert.ok(result.text.length < 500, `an answer of ${result.text.length} characters`);
      }
    });

    await t.step(
      "a definition id of 65 characters (one past any id in YAML) is a 400 naming it",
      async () => {
        const long = "a".repeat(65);
        for (
          const [method, path, param] of [
            ["POST", `/api/signals/${long}`, "signal_id"],
            ["POST", `/api/executions/${execId}/signals/${long}`, "signal_id"],
            ["GET", `/api/workflows/${long}`, "workflow_id"],
            ["POST", `/api/workflows/${long}/executions`, "workflow_id"],
            ["GET", `/api/tools/${long}`, "id"],
            ["GET", `/api/executions?workflow_id=${long}`, "workflow_id"],
          ]
        ) {
          const result = await call(`${base}${path}`, method, method === "POST" ? "{}" : undefined);
          assert.equal(result.status, 400, `${method} ${path.slice(0, 40)}…: ${result.text.slice(0, 300)}`);
          assert.equal(result.body.error.code, "validation_failed");
          assert.ok(result.body.error.message.includes(param), result.body.error.message);
          assert.ok(result.body.error.message.includes("64"), result.body.error.message);
        }
        // 64 characters pass the bound: an unknown workflow is a 404, a signal nobody waits for is delivered to none.
        const ok = "a".repeat(64);
        assert.equal((await call(`${base}/api/workflows/${ok}`)).status, 404);
        const broadcast = await call(`${base}/api/signals/${ok}`, "POST", "{}");
        assert.equal(broadcast.status, 200, broadcast.text);
        assert.deepEqual(broadcast.body.delivered_to, []);
      },
    );

    await t.step("an input nested 100,000 levels deep is refused, nothing is started", async () => {
      const before = (await h.engine.client.list({ workflowId: "wait" })).items.length;
      const result = await call(
        `${base}/api/workflows/wait/executions`,
        "POST",
        `{"input": ${nested(100_000)}}`,
      );
      assert.equal(result.status, 400, result.text.slice(0, 300));
      assert.equal(result.body.error.code, "validation_failed");
      assert.match(result.body.error.message, /body nests .* more than 65 levels deep/);
      assert.equal((await h.engine.client.list({ workflowId: "wait" })).items.length, before);
      // As deep as a tool's output may be: accepted.
      const ok = await call(`${base}/api/workflows/wait/executions`, "POST", `{"input": ${nested(64)}}`);
      assert.equal(ok.status, 202, ok.text.slice(0, 300));
    });

    // Outside break attempt brk43: past the check's step bound every check fails, and under a `not` a failure
    // is a pass: this input, which the schema forbids, started an execution.
    await t.step("an input whose check stops at its step bound is refused, even under a not", async () => {
      let input: unknown = 1;
      for (let i = 0; i < 30; i++) input = { args: [input], op: "mul" }; // 61 levels: under the body's bound
      const before = (await h.engine.client.list({ workflowId: "plain" })).items.length;
      const result = await call(`${base}/api/workflows/plain/executions`, "POST", JSON.stringify({ input }));
      assert.equal(result.status, 422, result.text.slice(0, 300));
      assert.match(result.text, /took more than 2000000 steps/);
      assert.equal((await h.engine.client.list({ workflowId: "plain" })).items.length, before);
    });

    await t.step("a signal payload nested too deep is refused", async () => {
      for (const path of [`/api/signals/go`, `/api/executions/${execId}/signals/go`]) {
        const result = await call(`${base}${path}`, "POST", nested(1_000));
        assert.equal(result.status, 400, `${path}: ${result.text.slice(0, 300)}`);
        assert.match(result.body.error.message, /body nests/);
      }
      assert.equal((await h.engine.client.get(execId))?.status, "WAITING");
    });

    await t.step(
      "pause and resume take no body: a field is a 400 naming it, and nothing is done",
      async () => {
        // Once 202: the field was dropped, so `{"reason": …}` to pause looked recorded (cancel refuses it).
        for (const action of ["pause", "resume"]) {
          const result = await call(
            `${base}/api/executions/${execId}/${action}`,
            "POST",
            '{"reason": "lunch"}',
          );
          assert.equal(result.status, 400, `${action}: ${result.text}`);
          assert.equal(result.body.error.code, "validation_failed");
          assert.deepEqual(result.body.error.details.map((d: { path: string }) => d.path), ["/reason"]);
        }
        assert.equal((await h.engine.client.get(execId))?.status, "WAITING");
        // No body, or `{}`, is a pause as before.
        assert.equal((await call(`${base}/api/executions/${execId}/pause`, "POST", "{}")).status, 202);
        assert.equal((await call(`${base}/api/executions/${execId}/resume`, "POST")).status, 202);
      },
    );
  });
});
