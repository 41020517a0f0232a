import { testInOwnProcess } from "../../test/support/own_process.ts";

testInOwnProcess(
  "which deno runs child processes (own process: its cases set PATH and the compiled-binary marker)",
  new URL("./_deno_executable_cases.ts", import.meta.url),
);
