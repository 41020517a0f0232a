/**
 * Requests read strictly (outside review api35), over real HTTP against a real engine and nats-server: a
 * numeric query parameter is decimal digits or a 400 naming it; a path that exists with another method is a
 * 405 with `Allow`; a JSON body in a charset other than UTF-8 is refused naming the charset.
 */
import assert from "node:assert/strict";
import { callApi as call, withEngineApi } from "../support/engine_api.ts";

const FILES = {
  "compozy.yaml": "name: strict-requests\nworkflows:\n  - source: ./wf.yaml\n",
  "wf.yaml": `id: wait
tasks:
  - id: w
    type: wait
    signal: go
    timeout: 5m
`,
};

Deno.test("requests are read strictly", async (t) => {
  await withEngineApi(FILES, async (base, h) => {
    const { execId } = await h.engine.client.trigger("wait", {});

    await t.step(
      "a numeric query parameter that is not plain decimal digits is a 400 naming it",
      async () => {
        const routes = [
          "/api/executions?",
          `/api/executions/${execId}/events?`,
          `/api/logs?exec_id=${execId}&`,
        ];
        for (const route of routes) {
          for (const value of ["0x10", "%202", "1e1", "2%20", "+2", "-0", "1.0", "", "%EF%BC%92"]) {
            const result = await call(`${base}${route}limit=${value}`);
            assert.equal(result.status, 400, `${route}limit=${value}: ${result.text}`);
            assert.equal(result.body.error.code, "validation_failed");
            assert.ok(result.body.error.message.includes("limit"), result.body.error.message);
            assert.deepEqual(result.body.error.details.map((d: { path: string }) => d.path), ["/limit"]);
          }
          const plain = await call(`${base}${route}limit=2`);
          assert.equal(plain.status, 200, plain.text);
        }
      },
    );

    await t.step("the OpenAPI document still describes limit as an integer with its bounds", async () => {
      const doc = (await call(`${base}/openapi.json`)).body;
      const limit = doc.paths["/api/executions"].get.parameters.find((p: { name: string }) =>
        p.name === "limit"
      );
      assert.deepEqual(
        { type: limit.schema.type, minimum: limit.schema.minimum, maximum: limit.schema.maximum },
        { type: "integer", minimum: 1, maximum: 500 },
      );
    });

    await t.step(
      "a path that exists with another method is a 405 with Allow; an unknown path a 404",
      async () => {
        const cases: [string, string, string][] = [
          ["DELETE", "/api/executions", "GET, HEAD"],
          ["PUT", `/api/executions/${execId}`, "GET, HEAD"],
          ["GET", `/api/executions/${execId}/cancel`, "POST"],
          ["POST", "/api/workflows", "GET, HEAD"],
          ["PATCH", "/api/health", "GET, HEAD"],
        ];
        for (const [method, path, allow] of cases) {
          const response = await fetch(`${base}${path}`, { method });
          const body = await response.json();
          assert.equal(response.status, 405, `${method} ${path}: ${JSON.stringify(body)}`);
          assert.equal(response.headers.get("allow"), allow, `${method} ${path}`);
          assert.equal(body.error.code, "method_not_allowed");
          assert.ok(body.error.message.includes(method), body.error.message);
          assert.deepEqual(body.error.details, [{ allowed: allow.split(", ") }]);
        }
        for (const [method, path] of [["DELETE", "/api/nothing-here"], ["GET", "/api/executions/x/nope"]]) {
          const response = await fetch(`${base}${path}`, { method });
          const body = await response.json();
          assert.equal(response.status, 404, `${method} ${path}: ${JSON.stringify(body)}`);
          assert.equal(body.error.code, "not_found");
          assert.equal(response.headers.get("allow"), null);
        }
      },
    );

    await t.step(
      "a JSON body in a charset other than UTF-8 is refused naming it; UTF-8 in any spelling is read",
      async () => {
        const start = `${base}/api/workflows/wait/executions`;
        for (
          const type of [
            "application/json; charset=utf-16",
            'application/json;charset="UTF-16LE"',
            "application/json; Charset=latin1",
          ]
        ) {
          const response = await fetch(start, {
            method: "POST",
            headers: { "content-type": type },
            body: "{}",
          });
          const body = await response.json();
          assert.equal(response.status, 400, `${type}: ${JSON.stringify(body)}`);
          assert.equal(body.error.code, "unsupported_content_type");
          const charset = type.split("=")[1].replaceAll('"', "");
          assert.ok(body.error.message.includes(charset), body.error.message);
        }
        for (
          const type of [
            "application/json; charset=utf-8",
            'application/json; CHARSET="UTF-8"',
            "application/json",
          ]
        ) {
          const response = await fetch(start, {
            method: "POST",
            headers: { "content-type": type },
            body: "{}",
          });
          const body = await response.json();
          assert.equal(response.status, 202, `${type}: ${JSON.stringify(body)}`);
        }
      },
    );

    await t.step("a compressed body is refused naming its coding; identity is read", async () => {
      const start = `${base}/api/workflows/wait/executions`;
      const gzipped = await new Response(
        new Blob(["{}"]).stream().pipeThrough(new CompressionStream("gzip")),
      ).bytes();
      const cases: [string, BodyInit][] = [["gzip", gzipped], ["br", "{}"], ["identity, gzip", gzipped]];
      for (const [coding, body] of cases) {
        const response = await fetch(start, {
          method: "POST",
          headers: { "content-type": "application/json", "content-encoding": coding },
          body,
        });
        const answer = await response.json();
        assert.equal(response.status, 400, `${coding}: ${JSON.stringify(answer)}`);
        assert.equal(answer.error.code, "unsupported_content_encoding");
        assert.ok(answer.error.message.includes(coding.replace("identity, ", "")), answer.error.message);
      }
      const identity = await fetch(start, {
        method: "POST",
        headers: { "content-type": "application/json", "content-encoding": "identity" },
        body: "{}",
      });
      assert.equal(identity.status, 202, await identity.text());
    });
  });
});
