/**
 * API.md against a real engine, NATS and HTTP, as an outside reviewer read it (brk-dx): the places where the
 * implementation had drifted from the contract. Each step names the clause it checks.
 */
import assert from "node:assert/strict";
import type { EngineHarness } from "../support/engine.ts";
import { callApi as call, withEngineApi } from "../support/engine_api.ts";
import { waitForStatus } from "../support/flows.ts";
import { until } from "../support/until.ts";

const TWICE = `id: twice
tasks:
  - id: first
    type: wait
    signal: go
    timeout: 5m
  - id: second
    type: wait
    signal: go
    timeout: 5m
outputs:
  second: "{{ .tasks.second.output }}"
`;

const FILES = {
  "compozy.yaml": "name: contract\nworkflows:\n  - source: ./wf.yaml\n  - source: ./twice.yaml\n",
  "wf.yaml": `id: wait
config:
  input:
    type: object
    properties: { name: { type: string } }
triggers:
  - type: webhook
    config: { url: /mapped, input: { name: "{{ .payload.user.name }}" } }
tasks:
  - id: w
    type: wait
    signal: go
    timeout: 5m
`,
  "twice.yaml": TWICE,
};

Deno.test("API contract", async (t) => {
  await withEngineApi(FILES, async (base: string, h: EngineHarness) => {
    const { execId } = await h.engine.client.trigger("wait", {});

    await t.step("an unknown field is a 400 whose details name the field, body and query alike", async () => {
      for (
        const [method, path, body, field] of [
          ["POST", "/api/workflows/wait/executions", '{"input": {}, "extra": 1}', "/extra"],
          ["POST", `/api/executions/${execId}/cancel`, '{"reason": "r", "why": 1}', "/why"],
          ["POST", `/api/executions/${execId}/rerun`, '{"inputs": {}}', "/inputs"],
          ["GET", "/api/executions?bogus=1", undefined, "/bogus"],
          ["GET", `/api/executions/${execId}/events?page=2`, undefined, "/page"],
        ] as const
      ) {
        const result = await call(`${base}${path}`, method, body);
        assert.equal(result.status, 400, `${method} ${path}: ${result.text}`);
        assert.equal(result.body.error.code, "validation_failed");
        assert.deepEqual(
          result.body.error.details.map((d: { path: string }) => d.path),
          [field],
          `${method} ${path}: ${result.text}`,
        );
        assert.ok(result.body.error.message.includes(field), result.body.error.message);
      }
    });

    await t.step("a route that takes no query refuses a parameter it would ignore, naming it", async () => {
      for (
        const [method, path, body] of [
          ["POST", `/api/executions/${execId}/rerun?wait=30s`, "{}"],
          ["GET", `/api/executions/${execId}?wait=30s`, undefined],
          ["POST", `/api/executions/${execId}/cancel?wait=30s`, "{}"],
          ["GET", "/api/workflows?wait=30s", undefined],
        ] as const
      ) {
        const result = await call(`${base}${path}`, method, body);
        assert.equal(result.status, 400, `${method} ${path}: ${result.text}`);
        assert.equal(result.body.error.code, "validation_failed");
        assert.deepEqual(result.body.error.details.map((d: { path: string }) => d.path), ["/wait"]);
      }
      // Health and metrics answer a probe whatever its URL carries (a cache-buster).
      assert.equal((await call(`${base}/api/health?_=1`)).status, 200);
      const metrics = await fetch(`${base}/api/metrics?_=1`);
      assert.equal(metrics.status, 200, await metrics.text());
      const executions = await h.engine.client.list({ limit: 500 });
      assert.equal(executions.items.length, 1, "the refused re-run started nothing");
      // A webhook's sender keeps the URL it was given, query and all.
      const hook = await call(`${base}/api/webhooks/mapped?delivery=7`, "POST", '{"user": {"name": "Q"}}');
      assert.equal(hook.status, 202, hook.text);
    });

    await t.step("a ?wait= too long to count is a 400 naming wait, not a 500", async () => {
      for (const wait of ["11m", "99999999999999999999s", "1d"]) {
        const result = await call(
          `${base}/api/workflows/wait/executions?wait=${wait}`,
          "POST",
          '{"input": {}}',
        );
        assert.equal(result.status, 400, `${wait}: ${result.text}`);
        assert.equal(result.body.error.code, "validation_failed");
        assert.deepEqual(result.body.error.details.map((d: { path: string }) => d.path), ["/wait"]);
        assert.match(result.body.error.message, /\/wait at most 10m/);
      }
    });

    await t.step("a webhook payload the mapping cannot read: details name the input field", async () => {
      const result = await call(`${base}/api/webhooks/mapped`, "POST", '{"user": {}}');
      assert.equal(result.status, 422, result.text);
      assert.equal(result.body.error.code, "input_mapping_failed");
      assert.match(result.body.error.message, /'\/mapped'/);
      const [detail] = result.body.error.details;
      assert.equal(detail.path, "/name");
      assert.equal(detail.payload_path, ".payload.user.name");
      assert.match(detail.message, /has no "name"/);
    });

    await t.step("every list answers {items, next_cursor}; definitions come in one page", async () => {
      for (
        const path of [
          "/api/workflows",
          "/api/tasks",
          "/api/agents",
          "/api/tools",
          "/api/tasks?workflow_id=wait",
          "/api/executions",
        ]
      ) {
        const result = await call(`${base}${path}`);
        assert.equal(result.status, 200, `${path}: ${result.text}`);
        assert.ok(Array.isArray(result.body.items), `${path}: ${result.text}`);
        assert.ok("next_cursor" in result.body, `${path} has next_cursor: ${result.text.slice(0, 300)}`);
        assert.equal(result.body.next_cursor, null, path);
      }
    });

    await t.step(
      "a signal sent again with its Idempotency-Key is one signal: the next wait does not take it",
      async () => {
        const twice = (await h.engine.client.trigger("twice", {})).execId;
        const waiting = (taskId: string) => async () =>
          (await h.engine.client.get(twice))?.tasks.some((t) =>
            t.task_id === taskId && t.status === "WAITING"
          ) ??
            false;
        const send = (key: string, payload: string) =>
          fetch(`${base}/api/executions/${twice}/signals/go`, {
            method: "POST",
            body: payload,
            headers: { "content-type": "application/json", "idempotency-key": key },
          }).then(async (r) => ({ status: r.status, body: await r.json() }));
        await until(waiting("first"));
        assert.equal((await send("k-1", '{"n": 1}')).status, 202);
        await until(waiting("second"));
        // The retry answers as the first delivery did, and its copy is dropped: signals are taken in the order
        // they are stored, so had the copy reached the second wait, that wait would have ended with {"n": 1}.
        assert.equal((await send("k-1", '{"n": 1}')).status, 202);
        assert.equal((await send("k-2", '{"n": 2}')).status, 202);
        await waitForStatus(h, twice, "SUCCESS");
        assert.deepEqual((await h.engine.client.get(twice))?.output, { second: { n: 2 } });
      },
    );

    await t.step("every status a route answered is in its OpenAPI responses", async () => {
      const big = JSON.stringify({ reason: "x".repeat(2 * 1024 * 1024) });
      const cases: [method: string, path: string, template: string, body: string | undefined][] = [
        ["GET", `/api/executions/${execId}/events?limit=0`, "/api/executions/{exec_id}/events", undefined],
        ["GET", `/api/executions/${"e".repeat(129)}`, "/api/executions/{exec_id}", undefined],
        ["GET", `/api/workflows/${"w".repeat(65)}`, "/api/workflows/{workflow_id}", undefined],
        ["POST", `/api/executions/${execId}/cancel`, "/api/executions/{exec_id}/cancel", '{"reason": 5}'],
        ["POST", `/api/executions/${execId}/cancel`, "/api/executions/{exec_id}/cancel", big],
        ["POST", "/api/signals/go", "/api/signals/{signal_id}", big],
        [
          "POST",
          `/api/executions/${execId}/signals/go`,
          "/api/executions/{exec_id}/signals/{signal_id}",
          big,
        ],
        ["POST", `/api/executions/${execId}/rerun`, "/api/executions/{exec_id}/rerun", big],
      ];
      const doc = (await call(`${base}/openapi.json`)).body;
      for (const [method, path, template, body] of cases) {
        const result = await call(`${base}${path}`, method, body);
        assert.ok(result.status >= 400, `${method} ${path.slice(0, 60)}: ${result.status}`);
        const listed = Object.keys(doc.paths[template][method.toLowerCase()].responses);
        assert.ok(
          listed.includes(String(result.status)),
          `${method} ${template} answered ${result.status} (${result.body.error.code}); OpenAPI lists ${listed}`,
        );
      }
      // With an API key set, every route but health, webhooks and the console answers 401 and 403 too.
      for (const [path, operations] of Object.entries(doc.paths as Record<string, Record<string, unknown>>)) {
        for (const [method, operation] of Object.entries(operations)) {
          const op = operation as { security?: unknown[]; responses: Record<string, unknown> };
          if (op.security?.length === 0) continue;
          for (const status of ["401", "403"]) {
            assert.ok(status in op.responses, `${method} ${path} lists ${status}`);
          }
        }
      }
    });
  });
});
