import { testInOwnProcess } from "../support/own_process.ts";

testInOwnProcess(
  "brk35: a sandbox uses the Deno cache the runtime guards (own process: its case sets DENO_DIR)",
  new URL("./_sandbox_deno_dir_cases.ts", import.meta.url),
);
