/**
 * The HTTP contract of API.md, route by route, without a socket (`app.request()`): statuses, the one error
 * body shape, auth, webhook signatures, idempotency, body limits and bad input of every kind.
 */
import assert from "node:assert/strict";
import type { Hono } from "hono";
import { createApp } from "../../server/app.ts";
import { signBody } from "../../server/constant_time.ts";
import type { HealthCheck, HealthReport } from "../../server/health.ts";
import type { LogRecord } from "../../server/log_source.ts";
import type { DeployBundle } from "../../server/routes/context.ts";
import { fixtureProject, WEBHOOK_SECRET } from "./fixture.ts";
import { MemoryExecutionClient } from "./memory_client.ts";

const { project } = await fixtureProject();
const API_KEY = "test-key-123";

const healthy: HealthCheck = {
  check: () =>
    Promise.resolve({
      status: "ok",
      components: {
        nats: { status: "ok", detail: "test" },
        engine: { status: "ok", detail: "test" },
        runtime: { status: "ok", detail: "test" },
      },
    }),
};

function setup(
  options: {
    apiKey?: string;
    health?: HealthCheck;
    bodyLimitBytes?: number;
    bodyTimeoutMs?: number;
    natsDown?: boolean;
    noDeploy?: boolean;
  } = {},
) {
  const client = new MemoryExecutionClient(project);
  const deployed: DeployBundle[] = [];
  const logs: LogRecord[] = [];
  const app = createApp({
    client,
    project,
    version: { version: "9.9.9", commit: "abc" },
    health: options.health ?? healthy,
    apiKey: options.apiKey,
    bodyLimitBytes: options.bodyLimitBytes,
    bodyTimeoutMs: options.bodyTimeoutMs,
    natsConnected: () => !options.natsDown,
    logs: { logs: () => Promise.resolve({ records: logs, next: null }) },
    deploy: options.noDeploy ? undefined : (bundle) => {
      deployed.push(bundle);
      return Promise.resolve({ deployment: "sha", project: bundle.project, workflows: ["greet"] });
    },
  });
  return { app, client, deployed, logs };
}

function json(body: unknown, headers: Record<string, string> = {}): RequestInit {
  return {
    method: "POST",
    body: JSON.stringify(body),
    headers: { "content-type": "application/json", ...headers },
  };
}

function assertIncludes(text: string, part: string): void {
  assert.ok(text.includes(part), `expected ${JSON.stringify(part)} in:\n${text}`);
}

async function assertError(res: Response, status: number, code: string): Promise<Record<string, unknown>> {
  const body = await res.json();
  assert.deepEqual(res.status, status, JSON.stringify(body));
  assert.deepEqual(Object.keys(body), ["error"]);
  assert.deepEqual(body.error.code, code);
  assert.deepEqual(typeof body.error.message, "string");
  assert.ok(Array.isArray(body.error.details), "details is a list");
  assert.match(res.headers.get("content-type") ?? "", /^application\/json/);
  return body.error;
}

async function start(app: Hono, input: unknown, headers: Record<string, string> = {}) {
  return await app.request("/api/workflows/greet/executions", json({ input }, headers));
}

Deno.test("system routes", async (t) => {
  await t.step("health is 200 with every component named when all answer", async () => {
    const res = await setup().app.request("/api/health");
    assert.deepEqual(res.status, 200);
    assert.deepEqual(Object.keys((await res.json()).components).sort(), ["engine", "nats", "runtime"]);
  });
  await t.step("health is 503 while a component does not answer, and needs no API key", async () => {
    const report: HealthReport = {
      status: "unavailable",
      components: {
        nats: { status: "ok", detail: "" },
        engine: { status: "unavailable", detail: "no answer" },
      },
    };
    const { app } = setup({ apiKey: API_KEY, health: { check: () => Promise.resolve(report) } });
    const res = await app.request("/api/health");
    assert.deepEqual(res.status, 503);
    assert.deepEqual((await res.json()).components.engine.status, "unavailable");
  });
  await t.step("version", async () => {
    const body = await (await setup().app.request("/api/version")).json();
    assert.deepEqual(body.version, "9.9.9");
    assert.deepEqual(body.commit, "abc");
  });
  await t.step("metrics are Prometheus text and count requests by route pattern", async () => {
    const { app } = setup();
    await app.request("/api/executions/nope");
    const res = await app.request("/api/metrics");
    assert.deepEqual(res.status, 200);
    assertIncludes(res.headers.get("content-type")!, "text/plain");
    const text = await res.text();
    assertIncludes(text, "# TYPE compozy_http_requests_total counter");
    assertIncludes(text, 'route="/api/executions/:exec_id",status="404"');
  });
  await t.step("OpenAPI 3.1 document lists every route of API.md", async () => {
    const doc = await (await setup().app.request("/openapi.json")).json();
    assert.deepEqual(doc.openapi, "3.1.0");
    const paths = Object.keys(doc.paths);
    for (
      const p of [
        "/api/health",
        "/api/version",
        "/api/metrics",
        "/api/workflows",
        "/api/workflows/{workflow_id}",
        "/api/workflows/{workflow_id}/executions",
        "/api/executions",
        "/api/executions/{exec_id}",
        "/api/executions/{exec_id}/events",
        "/api/executions/{exec_id}/cancel",
        "/api/executions/{exec_id}/pause",
        "/api/executions/{exec_id}/resume",
        "/api/executions/{exec_id}/rerun",
        "/api/executions/{exec_id}/signals/{signal_id}",
        "/api/signals/{signal_id}",
        "/api/webhooks/{path}",
        "/api/tasks",
        "/api/tasks/{id}",
        "/api/agents",
        "/api/agents/{id}",
        "/api/tools",
        "/api/tools/{id}",
        "/api/logs",
      ]
    ) assert.ok(paths.includes(p), `${p} is documented`);
    const start = doc.paths["/api/workflows/{workflow_id}/executions"].post;
    assert.deepEqual(
      start.requestBody.content["application/json"].schema.properties.input !== undefined,
      true,
    );
    assert.ok(doc.components.schemas.ExecutionState, "named schemas are components");
    assert.deepEqual(doc.paths["/api/health"].get.security, []);
  });
  await t.step("docs page renders the document without external resources", async () => {
    const res = await setup().app.request("/docs");
    assert.deepEqual(res.status, 200);
    const html = await res.text();
    assertIncludes(html, "/api/workflows/{workflow_id}/executions");
    assert.ok(!/src="http|href="http/.test(html), "no external resource");
  });
  await t.step("an unknown route is a 404 with the error body", async () => {
    await assertError(await setup().app.request("/api/nothing-here"), 404, "not_found");
  });
});

Deno.test("API key", async (t) => {
  const { app } = setup({ apiKey: API_KEY });
  await t.step("a missing Authorization header is 401 with a challenge", async () => {
    const res = await app.request("/api/workflows");
    assert.deepEqual(res.headers.get("www-authenticate"), 'Bearer realm="compozy"');
    await assertError(res, 401, "unauthorized");
  });
  await t.step("a malformed header is 401", async () => {
    await assertError(
      await app.request("/api/workflows", { headers: { authorization: "Basic x" } }),
      401,
      "unauthorized",
    );
  });
  await t.step("a wrong key is 403", async () => {
    const res = await app.request("/api/workflows", { headers: { authorization: "Bearer wrong" } });
    await assertError(res, 403, "forbidden");
  });
  await t.step("the right key passes, on every protected route", async () => {
    const auth = { authorization: `Bearer ${API_KEY}` };
    assert.deepEqual((await app.request("/api/workflows", { headers: auth })).status, 200);
    assert.deepEqual((await app.request("/openapi.json", { headers: auth })).status, 200);
    assert.deepEqual((await start(app, { name: "Ada" }, auth)).status, 202);
    assert.deepEqual((await start(app, { name: "Ada" })).status, 401);
  });
  await t.step("webhooks check their signature instead of the key", async () => {
    const res = await app.request("/api/webhooks/hooks/open", json({ name: "Ada" }));
    assert.deepEqual(res.status, 202);
  });
});

Deno.test("workflow definitions", async (t) => {
  const { app } = setup();
  await t.step("list", async () => {
    const body = await (await app.request("/api/workflows")).json();
    assert.deepEqual(body.items.map((w: { id: string }) => w.id).sort(), ["greet", "other"]);
  });
  await t.step("one, with its input schema, secrets shown only as templates", async () => {
    const body = await (await app.request("/api/workflows/greet")).json();
    assert.deepEqual(body.input_schema.required, ["name"]);
    assert.deepEqual(body.triggers[0].config.secret, "{{ .env.HOOK_SECRET }}");
    assert.deepEqual(body.tools[0].env.TOKEN, "[redacted]");
    assert.deepEqual(body.file, "workflows/greet.yaml");
  });
  await t.step("unknown id is 404", async () => {
    await assertError(await app.request("/api/workflows/nope"), 404, "workflow_not_found");
  });
});

Deno.test("starting executions", async (t) => {
  await t.step("202 with the exec id and a Location", async () => {
    const { app, client } = setup();
    const res = await start(app, { name: "Ada" });
    assert.deepEqual(res.status, 202);
    const { exec_id } = await res.json();
    assert.deepEqual(res.headers.get("location"), `/api/executions/${exec_id}`);
    assert.deepEqual(client.triggerOptionsOf(exec_id).source, "api");
  });
  await t.step("an empty body is an empty input (and fails this schema with 422)", async () => {
    const { app } = setup();
    const res = await app.request("/api/workflows/other/executions", { method: "POST" });
    assert.deepEqual(res.status, 202);
    const details = (await assertError(
      await app.request("/api/workflows/greet/executions", { method: "POST" }),
      422,
      "input_invalid",
    )).details;
    assert.deepEqual(details, [{ path: "/name", message: "must have required property 'name'" }]);
  });
  await t.step("422 names every failing field", async () => {
    const error = await assertError(await start(setup().app, { name: "" }), 422, "input_invalid");
    assert.deepEqual((error.details as Array<{ path: string }>)[0].path, "/name");
  });
  await t.step("a repeated Idempotency-Key answers 200 with the first exec id", async () => {
    const { app, client } = setup();
    const first = await start(app, { name: "Ada" }, { "idempotency-key": "k-1" });
    assert.deepEqual(first.status, 202);
    const again = await start(app, { name: "Other" }, { "idempotency-key": "k-1" });
    assert.deepEqual(again.status, 200);
    assert.deepEqual((await again.json()).exec_id, (await first.json()).exec_id);
    assert.deepEqual(client.triggers[0].options.idempotencyKey, "api:greet:k-1");
  });
  await t.step("the same key on another workflow starts another execution", async () => {
    const { app } = setup();
    await start(app, { name: "Ada" }, { "idempotency-key": "k-2" });
    const other = await app.request(
      "/api/workflows/other/executions",
      json({}, { "idempotency-key": "k-2" }),
    );
    assert.deepEqual(other.status, 202);
  });
  await t.step("a malformed Idempotency-Key is 400", async () => {
    await assertError(
      await start(setup().app, { name: "Ada" }, { "idempotency-key": "has space" }),
      400,
      "invalid_header",
    );
  });
  await t.step("?wait= answers 200 with the final state", async () => {
    const { app, client } = setup();
    const pending = app.request("/api/workflows/greet/executions?wait=5s", json({ input: { name: "Ada" } }));
    await new Promise((r) => setTimeout(r, 20));
    client.finish("exec-000001", "SUCCESS", { greeting: "hi Ada" });
    const res = await pending;
    assert.deepEqual(res.status, 200);
    const state = await res.json();
    assert.deepEqual([state.status, state.output], ["SUCCESS", { greeting: "hi Ada" }]);
  });
  await t.step("?wait= that runs out answers 200 with the state at that moment", async () => {
    const res = await setup().app.request(
      "/api/workflows/greet/executions?wait=50ms",
      json({ input: { name: "A" } }),
    );
    assert.deepEqual(res.status, 200);
    assert.deepEqual((await res.json()).status, "RUNNING");
  });
  await t.step("?wait= with a bad duration or too long is 400", async () => {
    const { app } = setup();
    await assertError(
      await app.request("/api/workflows/greet/executions?wait=soon", json({ input: {} })),
      400,
      "validation_failed",
    );
    await assertError(
      await app.request("/api/workflows/greet/executions?wait=1h", json({ input: {} })),
      400,
      "validation_failed",
    );
  });
  await t.step("malformed JSON is 400 and never reaches the engine", async () => {
    const { app, client } = setup();
    const res = await app.request("/api/workflows/greet/executions", {
      method: "POST",
      body: '{"input": {"name": "Ada"',
      headers: { "content-type": "application/json" },
    });
    await assertError(res, 400, "invalid_json");
    assert.deepEqual(client.triggers.length, 0);
  });
  await t.step("a wrong content type is 400", async () => {
    const res = await setup().app.request("/api/workflows/greet/executions", {
      method: "POST",
      body: "input=x",
      headers: { "content-type": "application/x-www-form-urlencoded" },
    });
    await assertError(res, 400, "unsupported_content_type");
  });
  await t.step("an unknown body field is 400", async () => {
    const error = await assertError(
      await setup().app.request("/api/workflows/greet/executions", json({ inputs: {} })),
      400,
      "validation_failed",
    );
    assertIncludes(error.message as string, "inputs");
  });
  await t.step("a body over the limit is 413, declared or streamed", async () => {
    const { app, client } = setup({ bodyLimitBytes: 1024 });
    const big = JSON.stringify({ input: { name: "x".repeat(2000) } });
    await assertError(
      await app.request("/api/workflows/greet/executions", json(JSON.parse(big))),
      413,
      "payload_too_large",
    );
    const stream = new ReadableStream({
      start(controller) {
        controller.enqueue(new TextEncoder().encode(big));
        controller.close();
      },
    });
    const res = await app.request("/api/workflows/greet/executions", {
      method: "POST",
      body: stream,
      headers: { "content-type": "application/json" },
    });
    await assertError(res, 413, "payload_too_large");
    assert.deepEqual(client.triggers.length, 0);
  });
  await t.step("a body that stops arriving is a 408 after the body time-out, not a hang (D3)", async () => {
    const { app, client } = setup({ bodyTimeoutMs: 200 });
    let canceled = false;
    const stalled = new ReadableStream({
      start(controller) {
        controller.enqueue(new TextEncoder().encode('{"input":'));
      },
      cancel() {
        canceled = true;
      },
    });
    const error = await assertError(
      await app.request("/api/workflows/greet/executions", {
        method: "POST",
        body: stalled,
        headers: { "content-type": "application/json" },
      }),
      408,
      "request_timeout",
    );
    assert.match(error.message as string, /did not arrive within 200 ms/);
    assert.ok(canceled, "the rest of the body is not waited for");
    assert.deepEqual(client.triggers.length, 0);
  });
  await t.step(
    "a number outside the range of a double is a 400 naming it, not stored as null (D6)",
    async () => {
      const { app, client } = setup();
      const res = await app.request("/api/workflows/greet/executions", {
        method: "POST",
        body: '{"input":{"name":"Ada","n":[1,1e400]}}',
        headers: { "content-type": "application/json" },
      });
      const error = await assertError(res, 400, "validation_failed");
      assert.deepEqual(error.details, [{
        path: "/input/n/1",
        message: "a number outside the range of a double",
      }]);
      assert.deepEqual(client.triggers.length, 0);
    },
  );
  await t.step("an integer a double would round is a 400 naming it, not stored rounded", async () => {
    const { app, client } = setup();
    const res = await app.request("/api/workflows/greet/executions", {
      method: "POST",
      body: '{"input":{"name":"Ada","ids":[9007199254740992,9007199254740993],"big":"12345678901234567890"}}',
      headers: { "content-type": "application/json" },
    });
    const error = await assertError(res, 400, "validation_failed");
    assert.deepEqual(error.details, [{
      path: "/input/ids/1",
      message: "an integer past ±2^53, which a double stores as 9007199254740992",
    }]);
    assert.match(error.message as string, /send it as a string/);
    assert.deepEqual(client.triggers.length, 0);
  });
  await t.step("a repeated query parameter is a 400 naming it, not cut to its first value (D5)", async () => {
    const { app } = setup();
    const error = await assertError(
      await app.request("/api/executions?status=RUNNING&status=FAILED"),
      400,
      "validation_failed",
    );
    assert.deepEqual(error.details, [{ path: "/status", message: "given more than once" }]);
  });
  await t.step("an unknown workflow is 404", async () => {
    await assertError(
      await setup().app.request("/api/workflows/nope/executions", json({ input: {} })),
      404,
      "workflow_not_found",
    );
  });
  await t.step("while NATS is unreachable, routes that need it answer 503 at once", async () => {
    const { app, client } = setup({ natsDown: true });
    const res = await start(app, { name: "Ada" });
    assert.equal(res.headers.get("retry-after"), "1");
    await assertError(res, 503, "nats_unavailable");
    await assertError(await app.request("/api/executions"), 503, "nats_unavailable");
    await assertError(await app.request("/api/webhooks/hooks/open", json({})), 503, "nats_unavailable");
    assert.equal(client.triggers.length, 0);
    assert.equal((await app.request("/api/workflows")).status, 200, "definitions need no NATS");
  });
  await t.step("NATS failing under a request is 503 with Retry-After", async () => {
    const { app, client } = setup();
    client.outage = true;
    const res = await start(app, { name: "Ada" });
    assert.deepEqual(res.headers.get("retry-after"), "1");
    await assertError(res, 503, "nats_unavailable");
  });
});

Deno.test("executions", async (t) => {
  const { app, client } = setup();
  const ids: string[] = [];
  for (const name of ["a", "b", "c"]) ids.push((await (await start(app, { name })).json()).exec_id);
  client.finish(ids[0], "SUCCESS", { ok: true });

  await t.step("list, newest first, filtered, paginated", async () => {
    const page = await (await app.request("/api/executions?limit=2")).json();
    assert.deepEqual(page.items.map((s: { exec_id: string }) => s.exec_id), [ids[2], ids[1]]);
    const next = await (await app.request(`/api/executions?limit=2&cursor=${page.next_cursor}`)).json();
    assert.deepEqual(next.items.map((s: { exec_id: string }) => s.exec_id), [ids[0]]);
    assert.deepEqual(next.next_cursor, null);
    const done = await (await app.request("/api/executions?status=SUCCESS&workflow_id=greet")).json();
    assert.deepEqual(done.items.length, 1);
  });
  await t.step("a bad filter is 400", async () => {
    await assertError(await app.request("/api/executions?status=DONE"), 400, "validation_failed");
    await assertError(await app.request("/api/executions?limit=0"), 400, "validation_failed");
  });
  await t.step("state", async () => {
    const state = await (await app.request(`/api/executions/${ids[0]}`)).json();
    assert.deepEqual([state.exec_id, state.status, state.output], [ids[0], "SUCCESS", { ok: true }]);
  });
  await t.step("unknown and impossible ids are 404", async () => {
    await assertError(await app.request("/api/executions/unknown-id"), 404, "execution_not_found");
    await assertError(await app.request("/api/executions/a.b*c"), 404, "execution_not_found");
    await assertError(await app.request("/api/executions/unknown-id/events"), 404, "execution_not_found");
    await assertError(
      await app.request("/api/executions/unknown-id/cancel", { method: "POST" }),
      404,
      "execution_not_found",
    );
  });
  await t.step("history", async () => {
    const { events } = await (await app.request(`/api/executions/${ids[0]}/events`)).json();
    assert.deepEqual(events.map((e: { type: string }) => e.type), ["workflow.started", "workflow.success"]);
  });
  await t.step("cancel is 202, then 409 once ended", async () => {
    const res = await app.request(`/api/executions/${ids[1]}/cancel`, json({ reason: "test" }));
    assert.deepEqual(res.status, 202);
    assert.deepEqual((await client.get(ids[1]))!.status, "CANCELED");
    const again = await app.request(`/api/executions/${ids[1]}/cancel`, { method: "POST" });
    const error = await assertError(again, 409, "execution_conflict");
    assert.deepEqual(error.details, [{ exec_id: ids[1], status: "CANCELED" }]);
  });
  await t.step("pause and resume", async () => {
    assert.deepEqual((await app.request(`/api/executions/${ids[2]}/pause`, { method: "POST" })).status, 202);
    await assertError(
      await app.request(`/api/executions/${ids[2]}/pause`, { method: "POST" }),
      409,
      "execution_conflict",
    );
    assert.deepEqual((await app.request(`/api/executions/${ids[2]}/resume`, { method: "POST" })).status, 202);
  });
  await t.step("a signal reaches a waiting execution; the body is the payload", async () => {
    client.waitFor(ids[2], "approve");
    const res = await app.request(`/api/executions/${ids[2]}/signals/approve`, json({ ok: 1 }));
    assert.deepEqual(res.status, 202);
    assert.deepEqual((await client.get(ids[2]))!.output, { ok: 1 });
  });
  await t.step("a signal to a finished execution is 409", async () => {
    await assertError(
      await app.request(`/api/executions/${ids[2]}/signals/approve`, json({})),
      409,
      "execution_conflict",
    );
  });
  await t.step("a malformed signal id or payload is 400", async () => {
    await assertError(
      await app.request(`/api/executions/${ids[2]}/signals/Bad.Id`, json({})),
      400,
      "validation_failed",
    );
    const res = await app.request(`/api/executions/${ids[2]}/signals/approve`, {
      method: "POST",
      body: "{nope",
      headers: { "content-type": "application/json" },
    });
    await assertError(res, 400, "invalid_json");
  });
  await t.step("a broadcast signal reaches every waiting execution", async () => {
    const a = (await (await start(app, { name: "x" })).json()).exec_id;
    const b = (await (await start(app, { name: "y" })).json()).exec_id;
    client.waitFor(a, "go");
    client.waitFor(b, "go");
    const res = await app.request("/api/signals/go", json({ n: 1 }));
    assert.deepEqual(res.status, 200);
    assert.deepEqual((await res.json()).delivered_to.sort(), [a, b].sort());
  });
  await t.step("rerun starts the same workflow with the first input, named as rerun_of", async () => {
    const res = await app.request(`/api/executions/${ids[0]}/rerun`, { method: "POST" });
    assert.deepEqual(res.status, 202);
    const { exec_id } = await res.json();
    assert.notDeepEqual(exec_id, ids[0]);
    assert.deepEqual(res.headers.get("location"), `/api/executions/${exec_id}`);
    const state = await (await app.request(`/api/executions/${exec_id}`)).json();
    assert.deepEqual([state.workflow_id, state.input, state.rerun_of], ["greet", { name: "a" }, ids[0]]);
  });
  await t.step("rerun with an edited input; a bad one is 422 at the field", async () => {
    const res = await app.request(`/api/executions/${ids[1]}/rerun`, json({ input: { name: "edited" } }));
    assert.deepEqual(res.status, 202);
    const state = await client.get((await res.json()).exec_id);
    assert.deepEqual([state!.input, state!.rerun_of], [{ name: "edited" }, ids[1]]);
    const bad = await assertError(
      await app.request(`/api/executions/${ids[1]}/rerun`, json({ input: { name: "" } })),
      422,
      "input_invalid",
    );
    assert.deepEqual((bad.details as Array<{ path: string }>)[0].path, "/name");
  });
  await t.step("rerun: an unknown id is 404, an unknown body field 400, a repeated key 200", async () => {
    await assertError(
      await app.request("/api/executions/unknown-id/rerun", { method: "POST" }),
      404,
      "execution_not_found",
    );
    await assertError(
      await app.request(`/api/executions/${ids[0]}/rerun`, json({ inputs: {} })),
      400,
      "validation_failed",
    );
    const first = await app.request(`/api/executions/${ids[0]}/rerun`, json({}, { "Idempotency-Key": "r1" }));
    const again = await app.request(`/api/executions/${ids[0]}/rerun`, json({}, { "Idempotency-Key": "r1" }));
    assert.deepEqual([first.status, again.status], [202, 200]);
    assert.deepEqual((await again.json()).exec_id, (await first.json()).exec_id);
  });
  await t.step("logs of an execution; a missing exec_id is 400", async () => {
    assert.deepEqual((await app.request(`/api/logs?exec_id=${ids[0]}`)).status, 200);
    await assertError(await app.request("/api/logs"), 400, "validation_failed");
    await assertError(await app.request("/api/logs?exec_id=nope"), 404, "execution_not_found");
  });
});

Deno.test("live events over SSE", async (t) => {
  await t.step("replays, follows, and ends after the terminal event", async () => {
    const { app, client } = setup();
    const execId = (await (await start(app, { name: "Ada" })).json()).exec_id;
    const res = await app.request(`/api/executions/${execId}/events`, {
      headers: { accept: "text/event-stream" },
    });
    assert.deepEqual(res.status, 200);
    assertIncludes(res.headers.get("content-type")!, "text/event-stream");
    setTimeout(() => client.finish(execId, "SUCCESS", { done: true }), 30);
    const text = await res.text();
    assertIncludes(text, "event: workflow.started");
    assertIncludes(text, "event: workflow.success");
    assert.match(text, /^id: \d+$/m);
  });
  await t.step("Last-Event-ID resumes after the given event", async () => {
    const { app, client } = setup();
    const execId = (await (await start(app, { name: "Ada" })).json()).exec_id;
    client.finish(execId, "FAILED");
    const [first] = await client.events(execId);
    const res = await app.request(`/api/executions/${execId}/events`, {
      headers: { accept: "text/event-stream", "last-event-id": String(first.seq) },
    });
    const text = await res.text();
    assert.ok(!text.includes("workflow.started"), "the replayed event is skipped");
    assertIncludes(text, "event: workflow.failed");
  });
  await t.step("an unknown execution is 404 before any stream starts", async () => {
    const res = await setup().app.request("/api/executions/nope/events", {
      headers: { accept: "text/event-stream" },
    });
    await assertError(res, 404, "execution_not_found");
  });
});

Deno.test("webhooks", async (t) => {
  const signed = (body: string, signature?: string, headers: Record<string, string> = {}): RequestInit => ({
    method: "POST",
    body,
    headers: {
      "content-type": "application/json",
      "x-compozy-signature": signature ?? signBody(WEBHOOK_SECRET, new TextEncoder().encode(body)),
      ...headers,
    },
  });
  await t.step("a signed call maps the payload to the input and starts the workflow", async () => {
    const { app, client } = setup();
    const res = await app.request("/api/webhooks/greet", signed('{"user":{"name":"Ada"}}'));
    assert.deepEqual(res.status, 202);
    const { exec_id } = await res.json();
    assert.deepEqual((await client.get(exec_id))!.input, { name: "Ada" });
    assert.deepEqual(client.triggerOptionsOf(exec_id).source, "webhook");
  });
  await t.step("a bad or missing signature is 401 and starts nothing", async () => {
    const { app, client } = setup();
    await assertError(
      await app.request("/api/webhooks/greet", signed('{"user":{}}', "sha256=00")),
      401,
      "invalid_signature",
    );
    const body = '{"user":{"name":"Ada"}}';
    const other = signBody("another-secret", new TextEncoder().encode(body));
    await assertError(
      await app.request("/api/webhooks/greet", signed(body, other)),
      401,
      "invalid_signature",
    );
    await assertError(
      await app.request("/api/webhooks/greet", json({ user: { name: "A" } })),
      401,
      "invalid_signature",
    );
    assert.deepEqual(client.triggers.length, 0);
  });
  await t.step("the signature covers the raw bytes: a re-serialised body fails", async () => {
    const body = '{"user": {"name": "Ada"}}';
    const signature = signBody(WEBHOOK_SECRET, new TextEncoder().encode(body));
    const res = await setup().app.request(
      "/api/webhooks/greet",
      signed(JSON.stringify(JSON.parse(body)), signature),
    );
    assert.deepEqual(res.status, 401);
  });
  await t.step("a payload the mapping cannot read is 422", async () => {
    const error = await assertError(
      await setup().app.request("/api/webhooks/greet", signed('{"other":1}')),
      422,
      "input_mapping_failed",
    );
    assertIncludes(error.message as string, "payload");
  });
  await t.step("a mapped input that fails the schema is 422 with the fields", async () => {
    await assertError(
      await setup().app.request("/api/webhooks/greet", signed('{"user":{"name":""}}')),
      422,
      "input_invalid",
    );
  });
  await t.step("without a mapping the body is the input; nested paths work", async () => {
    const { app, client } = setup();
    const res = await app.request("/api/webhooks/hooks/open", json({ name: "Bo" }));
    assert.deepEqual(res.status, 202);
    assert.deepEqual((await client.get((await res.json()).exec_id))!.input, { name: "Bo" });
  });
  await t.step("Idempotency-Key: a redelivered call answers 200 with the first exec id", async () => {
    const { app, client } = setup();
    const body = '{"user":{"name":"Ada"}}';
    const first = await app.request(
      "/api/webhooks/greet",
      signed(body, undefined, { "idempotency-key": "evt-1" }),
    );
    const again = await app.request(
      "/api/webhooks/greet",
      signed(body, undefined, { "idempotency-key": "evt-1" }),
    );
    assert.deepEqual([first.status, again.status], [202, 200]);
    assert.deepEqual((await again.json()).exec_id, (await first.json()).exec_id);
    assert.deepEqual(client.triggers[0].options.idempotencyKey, "webhook:/greet:evt-1");
  });
  await t.step(
    "a secret that cannot be rendered refuses every call instead of accepting unsigned ones",
    async () => {
      const { app, client } = setup();
      await assertError(await app.request("/api/webhooks/broken", json({})), 500, "webhook_misconfigured");
      assert.equal(client.triggers.length, 0);
    },
  );
  await t.step("unknown path is 404", async () => {
    await assertError(await setup().app.request("/api/webhooks/nope", json({})), 404, "webhook_not_found");
  });
  await t.step("malformed JSON (after a good signature) is 400", async () => {
    await assertError(await setup().app.request("/api/webhooks/greet", signed("{bad")), 400, "invalid_json");
    await assertError(
      await setup().app.request("/api/webhooks/hooks/open", {
        method: "POST",
        body: "[1,",
        headers: { "content-type": "application/json" },
      }),
      400,
      "invalid_json",
    );
  });
  await t.step("a wrong content type is 400", async () => {
    const res = await setup().app.request("/api/webhooks/hooks/open", {
      method: "POST",
      body: "<xml/>",
      headers: { "content-type": "text/xml" },
    });
    await assertError(res, 400, "unsupported_content_type");
  });
  await t.step("a huge body is 413 before any signature work", async () => {
    const { app } = setup({ bodyLimitBytes: 100 });
    await assertError(
      await app.request("/api/webhooks/greet", signed(JSON.stringify({ x: "y".repeat(500) }))),
      413,
      "payload_too_large",
    );
  });
});

Deno.test("task, agent and tool definitions", async (t) => {
  const { app } = setup();
  await t.step("lists name the declaring workflow", async () => {
    const tasks = await (await app.request("/api/tasks")).json();
    assert.deepEqual(
      tasks.items.map((x: { id: string; workflow_id: string }) => `${x.workflow_id}/${x.id}`).sort(),
      [
        "greet/hello",
        "other/only",
      ],
    );
    assert.deepEqual((await (await app.request("/api/agents")).json()).items, []);
  });
  await t.step("an id two workflows declare is 409 until workflow_id picks one", async () => {
    await assertError(await app.request("/api/tools/say"), 409, "ambiguous_id");
    const tool = await (await app.request("/api/tools/say?workflow_id=greet")).json();
    assert.deepEqual([tool.id, tool.workflow_id, tool.execute_path], [
      "say",
      "greet",
      "workflows/tools/say.ts",
    ]);
    assert.deepEqual(tool.env.TOKEN, "[redacted]");
  });
  await t.step("tools and agents name the line of their declaration", async () => {
    const { items } = await (await app.request("/api/tools")).json();
    const lines = items.map((t: { workflow_id: string; file: string; line: number }) =>
      `${t.workflow_id} ${t.file}:${t.line}`
    );
    assert.deepEqual(lines.sort(), ["greet workflows/greet.yaml:17", "other workflows/other.yaml:6"]);
  });
  await t.step("unknown ids are 404", async () => {
    await assertError(await app.request("/api/tasks/nope"), 404, "task_not_found");
    await assertError(await app.request("/api/agents/nope"), 404, "agent_not_found");
  });
});

Deno.test("deployments", async (t) => {
  const bundle = {
    format: "compozy-bundle/1",
    project: "p",
    created_at: "now",
    files: { "compozy.yaml": "" },
  };
  await t.step("501 from a process that cannot load deployments", async () => {
    const { app } = setup({ apiKey: API_KEY, noDeploy: true });
    const res = await app.request(
      "/api/admin/deployments",
      json(bundle, { authorization: `Bearer ${API_KEY}` }),
    );
    await assertError(res, 501, "deploy_unavailable");
  });
  await t.step("refused without an API key on the server", async () => {
    await assertError(
      await setup().app.request("/api/admin/deployments", json(bundle)),
      403,
      "deploy_requires_api_key",
    );
  });
  await t.step("accepted with the key; a non-bundle is 400", async () => {
    const { app, deployed } = setup({ apiKey: API_KEY });
    const auth = { authorization: `Bearer ${API_KEY}` };
    const res = await app.request("/api/admin/deployments", json(bundle, auth));
    assert.deepEqual(res.status, 200);
    assert.deepEqual(deployed.length, 1);
    await assertError(
      await app.request("/api/admin/deployments", json({ files: 1 }, auth)),
      400,
      "validation_failed",
    );
    await assertError(
      await app.request("/api/admin/deployments", { method: "POST", headers: auth }),
      400,
      "validation_failed",
    );
  });
});
