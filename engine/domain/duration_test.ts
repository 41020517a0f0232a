import assert from "node:assert/strict";
import {
  DELAY_FORMAT,
  DURATION_FORMAT,
  durationBoundProblem,
  MAX_DURATION,
  MAX_DURATION_MS,
  parseDuration,
} from "./duration.ts";

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

Deno.test("durationBoundProblem", async (t) => {
  await t.step("a duration is above zero and at most 3650d; a delay may be zero", () => {
    assert.equal(durationBoundProblem("3650d", DURATION_FORMAT), undefined);
    assert.equal(durationBoundProblem("1ms", DURATION_FORMAT), undefined);
    assert.equal(durationBoundProblem("0ms", DELAY_FORMAT), undefined);
    assert.match(durationBoundProblem("0s", DURATION_FORMAT)!, /above zero, found "0s"/);
    assert.match(durationBoundProblem("3651d", DELAY_FORMAT)!, /at most 3650d \(10 years\)/);
    assert.equal(parseDuration(MAX_DURATION), MAX_DURATION_MS);
  });

  await t.step("a deadline at the bound is a valid date", () => {
    assert.ok(!Number.isNaN(new Date(Date.now() + MAX_DURATION_MS).getTime()));
  });

  await t.step("past the safe integers is over the bound, not a crash", () => {
    assert.match(durationBoundProblem("99999999999999999999999d", DURATION_FORMAT)!, /at most 3650d/);
  });

  await t.step("what is no duration is left to the pattern", () => {
    assert.equal(durationBoundProblem("5 minutes", DURATION_FORMAT), undefined);
  });
});
