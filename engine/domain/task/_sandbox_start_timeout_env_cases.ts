/**
 * It sets COMPOZY_SANDBOX_START_TIMEOUT_MS for its whole process: leaf_executor_test.ts runs it in a process of
 * its own (test/support/own_process.ts).
 */
import assert from "node:assert/strict";
import { engineTimingsFromEnv } from "../../mod.ts";
Deno.test("the engine reads the runtimes' sandbox start timeout from COMPOZY_SANDBOX_START_TIMEOUT_MS", () => {
  const before = Deno.env.get("COMPOZY_SANDBOX_START_TIMEOUT_MS");
  try {
    Deno.env.set("COMPOZY_SANDBOX_START_TIMEOUT_MS", "90000");
    assert.equal(engineTimingsFromEnv().sandboxStartTimeoutMs, 90_000);
    Deno.env.delete("COMPOZY_SANDBOX_START_TIMEOUT_MS");
    assert.equal(engineTimingsFromEnv().sandboxStartTimeoutMs, undefined);
    Deno.env.set("COMPOZY_SANDBOX_START_TIMEOUT_MS", "soon");
    assert.throws(() => engineTimingsFromEnv(), /COMPOZY_SANDBOX_START_TIMEOUT_MS/);
  } finally {
    if (before === undefined) Deno.env.delete("COMPOZY_SANDBOX_START_TIMEOUT_MS");
    else Deno.env.set("COMPOZY_SANDBOX_START_TIMEOUT_MS", before);
  }
});
