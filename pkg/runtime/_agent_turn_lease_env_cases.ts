/**
 * It sets COMPOZY_AGENT_TURN_LEASE_MS for its whole process: settings_env_test.ts runs it in a process of its
 * own (test/support/own_process.ts).
 */
import assert from "node:assert/strict";
import { runtimeSettingsFromEnv } from "./settings_env.ts";

const NAME = "COMPOZY_AGENT_TURN_LEASE_MS";

Deno.test("the runtime reads an agent turn's lease from COMPOZY_AGENT_TURN_LEASE_MS", () => {
  const before = Deno.env.get(NAME);
  try {
    Deno.env.set(NAME, "2500");
    assert.equal(runtimeSettingsFromEnv().agentTurnLeaseMs, 2_500);
    Deno.env.delete(NAME);
    assert.equal(runtimeSettingsFromEnv().agentTurnLeaseMs, undefined);
    // A bad value stops the runtime (and `dev` or `start` before anything starts) naming the variable.
    Deno.env.set(NAME, "15s");
    assert.throws(
      () => runtimeSettingsFromEnv(),
      new RegExp(`^EnvSettingError: ${NAME} must be .*got '15s'$`),
    );
  } finally {
    if (before === undefined) Deno.env.delete(NAME);
    else Deno.env.set(NAME, before);
  }
});
