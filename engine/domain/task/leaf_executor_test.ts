/**
 * The engine's deadline for a runtime's answer covers the runtime's wait for a sandbox (outside review D1): the
 * runtime times a call's run from when it enters its sandbox, after a wait of up to max(its sandbox start
 * timeout, the call's limit). Before, the engine gave up at the call's limit plus 5 s, so a call that waited
 * longer for a cold start failed `runtime_unavailable` although the runtime ran it (test/e2e/tool_timeout_retry_test.ts).
 */
import assert from "node:assert/strict";
import { MAX_TIMER_MS } from "../../long_timer.ts";
import { testInOwnProcess } from "../../../test/support/own_process.ts";
import { runtimeAnswerDeadlineMs, SANDBOX_WAIT_ALLOWANCE_MS } from "./leaf_executor.ts";

Deno.test("the engine waits for a call's limit, plus the larger of it and the sandbox wait allowance, plus 5 s", () => {
  assert.equal(SANDBOX_WAIT_ALLOWANCE_MS, 60_000);
  // A short call: its wait for a sandbox may take up to the runtime's start timeout (10 s by default).
  assert.equal(runtimeAnswerDeadlineMs(700), 700 + 60_000 + 5_000);
  // A long one: it may wait up to its own limit for a busy sandbox of its tool to free up.
  assert.equal(runtimeAnswerDeadlineMs(120_000), 120_000 + 120_000 + 5_000);
  // Runtimes whose start timeout was raised: the engine is told (COMPOZY_SANDBOX_START_TIMEOUT_MS).
  assert.equal(runtimeAnswerDeadlineMs(700, 90_000), 700 + 90_000 + 5_000);
  // setTimeout fires at once past its bound: the deadline stays under it (test/e2e/long_call_limit_test.ts).
  assert.equal(runtimeAnswerDeadlineMs(MAX_TIMER_MS - 3_600_000), MAX_TIMER_MS);
});

testInOwnProcess(
  "the engine reads the runtimes' sandbox start timeout from COMPOZY_SANDBOX_START_TIMEOUT_MS (own process)",
  new URL("./_sandbox_start_timeout_env_cases.ts", import.meta.url),
);
