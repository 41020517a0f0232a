import assert from "node:assert/strict";
import { MAX_RETRY_DELAY_MS, retryDelayMs } from "./bus.ts";

Deno.test("a failed delivery comes back sooner than a few seconds, later each time", () => {
  assert.deepEqual([1, 2, 3, 4, 5].map(retryDelayMs), [100, 200, 400, 800, 1_600]);
  // It once grew to 25.6 s: a failed activation then stalled an execution for that long.
  for (const delivery of [6, 9, 100, 1_000_000]) assert.equal(retryDelayMs(delivery), MAX_RETRY_DELAY_MS);
  assert.ok(MAX_RETRY_DELAY_MS <= 5_000);
  assert.equal(retryDelayMs(0), 100);
});
