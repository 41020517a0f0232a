/** Which reference results crash runs leave out (cases.ts `unusable`), on hand-made results. */
import assert from "node:assert/strict";
import type { ReferenceResult, ToolCallRecord } from "../reference/types.ts";
import { unusable } from "./cases.ts";
import type { Case } from "./generator.ts";

const plainCase: Case = {
  seed: 1,
  id: "main",
  workflows: { main: { id: "main", tasks: [] } },
  input: {},
  plan: {},
};

function result(calls: ToolCallRecord[], decisions: ReferenceResult["decisions"] = []): ReferenceResult {
  return {
    status: "SUCCESS",
    output: null,
    error: null,
    tasks: {},
    calls,
    checkpoints: [],
    waitStarts: {},
    bounds: [],
    decisions,
    elapsedMs: 100,
  };
}

const flaky = (k: string, attempt: number, n = 1) => ({ tool: "t", input: { k, do: "flaky", n }, attempt });

Deno.test("crash runs leave out a flaky tool that fails for good, and a race decided while others ran", () => {
  // Attempt 1 fails and nothing follows (no retry): a crash re-run as attempt 2 would succeed (seed 30329).
  assert.match(unusable(plainCase, result([flaky("a", 1)]), true) ?? "", /flaky a fails on its last/);
  // Retried to success: the same whatever the kills.
  assert.equal(unusable(plainCase, result([flaky("a", 1), flaky("a", 2)]), true), undefined);
  // A retried container calls it again from attempt 1, and that run fails for good.
  assert.match(
    unusable(plainCase, result([flaky("a", 1), flaky("a", 2), flaky("a", 1)]), true) ?? "",
    /flaky a/,
  );
  // Plain runs keep them all.
  assert.equal(unusable(plainCase, result([flaky("a", 1)]), false), undefined);

  const race = [{ key: "fan", branch: "quick", atMs: 10, stopped: 1 }];
  assert.match(unusable(plainCase, result([], race), true) ?? "", /fan was decided by quick/);
  assert.equal(unusable(plainCase, result([], [{ ...race[0], stopped: 0 }]), true), undefined);
  assert.equal(unusable(plainCase, result([], race), false), undefined);
});
