import assert from "node:assert/strict";
import { APICallError, LoadAPIKeyError } from "ai";
import { AgentFailure } from "./agent_failure.ts";
import { failureFromModelError, retryAfterFromHeaders } from "./provider_errors.ts";

const request = { label: "agent 'a'", timeoutMs: 1_000, timedOut: false };

function apiError(statusCode: number | undefined, headers?: Record<string, string>, isRetryable = false) {
  return new APICallError({
    message: "boom",
    url: "http://127.0.0.1:1/v1/chat/completions",
    requestBodyValues: {},
    statusCode,
    responseHeaders: headers,
    responseBody: "x".repeat(5_000),
    isRetryable,
  });
}

Deno.test("retryAfterFromHeaders", async (t) => {
  const now = Date.UTC(2026, 0, 1, 12, 0, 0);
  await t.step("seconds, whole or decimal", () => {
    assert.equal(retryAfterFromHeaders({ "retry-after": "2" }, now), 2_000);
    assert.equal(retryAfterFromHeaders({ "retry-after": " 0.25 " }, now), 250);
  });
  await t.step("an HTTP date, relative to now; a past date is 0", () => {
    assert.equal(retryAfterFromHeaders({ "retry-after": "Thu, 01 Jan 2026 12:00:30 GMT" }, now), 30_000);
    assert.equal(retryAfterFromHeaders({ "retry-after": "Thu, 01 Jan 2026 11:00:00 GMT" }, now), 0);
  });
  await t.step("retry-after-ms wins over retry-after", () => {
    assert.equal(retryAfterFromHeaders({ "retry-after-ms": "120", "retry-after": "9" }, now), 120);
  });
  await t.step("nothing usable is undefined", () => {
    assert.equal(retryAfterFromHeaders(undefined, now), undefined);
    assert.equal(retryAfterFromHeaders({}, now), undefined);
    assert.equal(retryAfterFromHeaders({ "retry-after": "soon" }, now), undefined);
    assert.equal(retryAfterFromHeaders({ "retry-after": "-3" }, now), undefined);
    assert.equal(retryAfterFromHeaders({ "retry-after-ms": "x", "retry-after": "1" }, now), 1_000);
  });
});

Deno.test("failureFromModelError", async (t) => {
  await t.step("status codes", () => {
    const cases: Array<[number, string, boolean]> = [
      [401, "agent_provider_auth", false],
      [403, "agent_provider_auth", false],
      [429, "agent_rate_limited", true],
      [400, "agent_provider_error", false],
      [422, "agent_provider_error", false],
      [500, "agent_provider_error", true],
      [529, "agent_provider_error", true],
    ];
    for (const [status, code, retryable] of cases) {
      const failure = failureFromModelError(apiError(status), request);
      assert.equal(failure.code, code, `status ${status}`);
      assert.equal(failure.retryable, retryable, `status ${status}`);
      assert.equal(failure.details?.status, status);
    }
  });

  await t.step("the response body is kept as a bounded excerpt, the error as the cause", () => {
    const error = apiError(500);
    const failure = failureFromModelError(error, request);
    assert.equal((failure.details?.body as string).length, 1_000);
    assert.equal(failure.cause, error);
  });

  await t.step("no status: retryable as the SDK says (connection refused is)", () => {
    assert.equal(failureFromModelError(apiError(undefined, undefined, true), request).retryable, true);
    assert.equal(failureFromModelError(apiError(undefined, undefined, false), request).retryable, false);
  });

  await t.step("our own time-out wins over whatever the aborted request threw", () => {
    const failure = failureFromModelError(new DOMException("aborted", "AbortError"), {
      ...request,
      timedOut: true,
    });
    assert.equal(failure.code, "agent_timeout");
    assert.equal(failure.retryable, true);
  });

  await t.step("a missing API key is a config failure", () => {
    const failure = failureFromModelError(
      new LoadAPIKeyError({ message: "OPENAI_API_KEY is missing" }),
      request,
    );
    assert.equal(failure.code, "agent_config_invalid");
    assert.deepEqual(failure.details, { field: "api_key" });
  });

  await t.step("an AgentFailure passes through; anything else is a retryable provider error", () => {
    const own = new AgentFailure("agent_max_steps", "x", { retryable: false });
    assert.equal(failureFromModelError(own, request), own);
    const other = failureFromModelError(new SyntaxError("Unexpected token <"), request);
    assert.equal(other.code, "agent_provider_error");
    assert.equal(other.retryable, true);
    assert.deepEqual(other.details, { error: "SyntaxError" });
  });
});
