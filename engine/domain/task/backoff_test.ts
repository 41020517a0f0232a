import assert from "node:assert/strict";
import { backoffDelay } from "./backoff.ts";

Deno.test("backoff delays", async (t) => {
  const retry = { max_attempts: 10, backoff: { initial: "100ms", max: "1s", factor: 3 } };

  await t.step("between half and all of the exponential ceiling", () => {
    assert.equal(backoffDelay(retry, 1, () => 0), 50);
    assert.equal(backoffDelay(retry, 1, () => 1), 100);
    assert.equal(backoffDelay(retry, 2, () => 0), 150);
    assert.equal(backoffDelay(retry, 3, () => 1), 900);
  });

  await t.step("bounded by max", () => {
    assert.equal(backoffDelay(retry, 4, () => 1), 1000);
    assert.equal(backoffDelay(retry, 40, () => 0), 500);
  });

  await t.step("defaults: 1s, doubling, at most 30s", () => {
    assert.equal(backoffDelay(undefined, 1, () => 1), 1000);
    assert.equal(backoffDelay({ max_attempts: 3 }, 2, () => 1), 2000);
    assert.equal(backoffDelay(undefined, 20, () => 1), 30_000);
  });
});
