import { testInOwnProcess } from "../../test/support/own_process.ts";

testInOwnProcess(
  "the runtime's settings from the environment (own process: its cases set COMPOZY_AGENT_TURN_LEASE_MS)",
  new URL("./_agent_turn_lease_env_cases.ts", import.meta.url),
);
