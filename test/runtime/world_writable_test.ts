import { testInOwnProcess } from "../support/own_process.ts";

testInOwnProcess(
  "brk36: a write grant cannot open a folder to every user of the host (own process: its case sets the umask)",
  new URL("./_world_writable_cases.ts", import.meta.url),
);
