import assert from "node:assert/strict";
import { parseDuration } from "./duration.ts";

Deno.test("parseDuration", async (t) => {
  await t.step("converts every unit to milliseconds", () => {
    assert.equal(parseDuration("500ms"), 500);
    assert.equal(parseDuration("30s"), 30_000);
    assert.equal(parseDuration("5m"), 300_000);
    assert.equal(parseDuration("1h"), 3_600_000);
    assert.equal(parseDuration("1d"), 86_400_000);
    assert.equal(parseDuration("0s"), 0);
  });

  await t.step("rejects anything else, naming the value", () => {
    for (const bad of ["", "5", "5 m", "1.5s", "-1s", "1w", "5M", "s"]) {
      assert.throws(
        () => parseDuration(bad),
        (err: Error) => err instanceof RangeError && err.message.includes(JSON.stringify(bad)),
      );
    }
    assert.throws(() => parseDuration(42 as unknown as string), RangeError);
  });

  await t.step("rejects a duration too long to be exact", () => {
    assert.throws(() => parseDuration("99999999999999999d"), /too long/);
  });
});
