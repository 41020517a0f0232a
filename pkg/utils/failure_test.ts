import assert from "node:assert/strict";
import { failureOptionsOf, toErrorInfo } from "./failure.ts";

Deno.test("failures to and from ErrorInfo", async (t) => {
  await t.step("every field goes over the wire and back", () => {
    const info = toErrorInfo({
      code: "tool_timeout",
      message: "late",
      retryable: true,
      details: { limit_ms: 10 },
      retryAfterMs: 250,
    });
    assert.deepEqual(failureOptionsOf(info), {
      code: "tool_timeout",
      message: "late",
      retryable: true,
      details: { limit_ms: 10 },
      retryAfterMs: 250,
    });
  });

  await t.step(
    "details that are not an object are wrapped; a missing ErrorInfo is an unknown failure",
    () => {
      assert.deepEqual(toErrorInfo({ code: "c", message: "m", retryable: false, details: [1] }).details, {
        value: [1],
      });
      assert.deepEqual(failureOptionsOf(undefined), {
        code: "unknown",
        message: "unknown error",
        retryable: false,
        details: undefined,
        retryAfterMs: 0,
      });
    },
  );
});
