import { testInOwnProcess } from "../support/own_process.ts";

testInOwnProcess(
  "the store watchdog runs the system's programs, not PATH's (own process: its case plants programs on PATH)",
  new URL("./_system_programs_cases.ts", import.meta.url),
);
