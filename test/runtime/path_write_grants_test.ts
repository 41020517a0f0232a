import { testInOwnProcess } from "../support/own_process.ts";

testInOwnProcess(
  "write grants and the runtime's PATH folders (own process: its cases set PATH and NATS_SERVER_BIN)",
  new URL("./_path_write_grants_cases.ts", import.meta.url),
);
