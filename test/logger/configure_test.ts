import { testInOwnProcess } from "../support/own_process.ts";

testInOwnProcess(
  "logging set-up (own process: its cases set COMPOZY_LOG_LEVEL and LOG_FORMAT)",
  new URL("./_configure_cases.ts", import.meta.url),
);
