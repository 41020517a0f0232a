/**
 * Runs a cases file with `deno test` in a process of its own, for cases that change the process's
 * environment (PATH, NATS_SERVER_BIN, COMPOZY_LOG_LEVEL, ...). `deno test --parallel` runs every test file
 * in one process, so such a change reaches every file running beside it: path_write_grants' stand-in
 * NATS_SERVER_BIN (`#!/bin/sh`, which exits 0 at once) was the nats-server that output_bounds started, which
 * then "exited with code 0 before it was ready" in 3 of 4 runs of the suite.
 *
 * A cases file is named `_<what>_cases.ts`, which `deno test` does not pick up by itself; `deno task check`
 * type-checks it, so the child runs with `--no-check`.
 */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";

/** Registers one test that runs every case of `cases`, with `env` changed (undefined: removed). */
export function testInOwnProcess(
  name: string,
  cases: URL,
  env: Record<string, string | undefined> = {},
): void {
  Deno.test(name, async () => {
    const childEnv: Record<string, string> = { ...Deno.env.toObject(), NO_COLOR: "1" };
    for (const [key, value] of Object.entries(env)) {
      if (value === undefined) delete childEnv[key];
      else childEnv[key] = value;
    }
    const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
      args: ["test", "-A", "--no-check", fileURLToPath(cases)],
      env: childEnv,
      clearEnv: true,
      stdin: "null",
    }).output();
    const output = new TextDecoder().decode(stdout) + new TextDecoder().decode(stderr);
    const summary = output.match(/^(ok|FAILED) \| (\d+) passed.*\| (\d+) failed/m);
    assert.ok(summary, `no test summary from ${cases.pathname}:\n${output}`);
    assert.equal(code, 0, `cases failed in their own process:\n${output}`);
    assert.ok(Number(summary[2]) > 0, `no case ran in ${cases.pathname}:\n${output}`);
    assert.equal(summary[3], "0", output);
  });
}
