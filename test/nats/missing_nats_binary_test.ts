import { testInOwnProcess } from "../support/own_process.ts";

testInOwnProcess(
  "a missing nats-server binary says how to install it (own process: no PATH folder has one)",
  new URL("./_missing_nats_binary_cases.ts", import.meta.url),
  { PATH: "/nonexistent", NATS_SERVER_BIN: undefined },
);
