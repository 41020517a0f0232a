import assert from "node:assert/strict";
import { type FailureContext, failureFromDeath, failureFromError } from "./sandbox_failures.ts";
import type { Death } from "./sandbox_process.ts";

const CTX: FailureContext = {
  toolId: "t",
  executePath: "/tools/t.ts",
  timeoutMs: 1000,
  heapLimitMb: 64,
  maxOutputBytes: 1024,
  maxFileBytes: 4096,
  maxCallWriteBytes: 8192,
  maxRunnableThreads: 4,
};

function death(overrides: Partial<Death>): Death {
  return { reason: "crash", exitCode: 133, signal: "SIGTRAP", stderr: "", outOfMemory: false, ...overrides };
}

Deno.test("a death the process reported as out of memory is tool_memory_exceeded", () => {
  for (const reason of ["crash", "protocol"] as const) {
    const failure = failureFromDeath(CTX, death({ reason, outOfMemory: true }));
    assert.equal(failure.code, "tool_memory_exceeded", reason);
    assert.match(failure.message, /heap limit 64 MB/);
  }
});

Deno.test("the resident-memory watch's kill is tool_memory_exceeded", () => {
  const failure = failureFromDeath(
    CTX,
    death({ reason: "memory", signal: null, exitCode: null, message: "resident memory 300 MiB passed" }),
  );
  assert.equal(failure.code, "tool_memory_exceeded");
  assert.match(failure.message, /resident memory/);
});

Deno.test("a crash without an out-of-memory report, and a time-out, keep their own codes", () => {
  assert.equal(failureFromDeath(CTX, death({})).code, "tool_crashed");
  assert.equal(failureFromDeath(CTX, death({ reason: "timeout", outOfMemory: true })).code, "tool_timeout");
});

Deno.test("Deno's exit for an unstable API is tool_permission_denied naming the API, not a retryable crash", () => {
  // What Deno 2.9.6 prints and exits with when a sandbox reaches an API behind a flag it lacks.
  const stderr = "Unstable API 'Deno.listen'. The `--unstable-vsock` flag must be provided.\n";
  const failure = failureFromDeath(CTX, death({ exitCode: 70, signal: null, stderr }));
  assert.equal(failure.code, "tool_permission_denied");
  assert.equal(failure.retryable, false);
  assert.match(failure.message, /called Deno\.listen, an unstable Deno API \(--unstable-vsock\)/);
  assert.deepEqual(
    [(failure.details as { api: string }).api, (failure.details as { flag: string }).flag],
    ["Deno.listen", "--unstable-vsock"],
  );
  // The text alone, or the code alone, is a crash like any other.
  assert.equal(failureFromDeath(CTX, death({ exitCode: 1, signal: null, stderr })).code, "tool_crashed");
  assert.equal(
    failureFromDeath(CTX, death({ exitCode: 70, signal: null, stderr: "panic\n" })).code,
    "tool_crashed",
  );
});

Deno.test("a permission error names the tool's permissions field, not Deno's command-line flag", () => {
  const denied = (message: string) =>
    failureFromError(CTX, { kind: "threw", name: "NotCapable", message, permission: true }).message;
  assert.equal(
    denied('Requires env access to "FOO", run again with the --allow-env flag'),
    'Tool "t" was denied a permission: Requires env access to "FOO": the tool\'s permissions.env does not ' +
      "grant it, or the sandbox refuses it to every tool (docs/runtime-sandbox.md)",
  );
  assert.match(
    denied('Requires net access to "example.com:80", run again with the --allow-net flag'),
    /permissions\.net/,
  );
  assert.match(
    denied('Requires run access to "ls", run again with the --allow-run flag'),
    /"ls": a tool sandbox never has run access/,
  );
  // A refusal of the sandbox's own words is kept as it is.
  assert.match(
    denied('Built-in "node:vm" is refused in a tool sandbox'),
    /node:vm" is refused in a tool sandbox$/,
  );
});

Deno.test("a death by SIGXFSZ names the file size bound", () => {
  const failure = failureFromDeath(CTX, death({ exitCode: 153, signal: "SIGXFSZ" }));
  assert.equal(failure.code, "tool_crashed");
  assert.match(failure.message, /^Tool "t" wrote a file past the sandbox's bound of 4096 bytes per file/);
  assert.deepEqual((failure.details as { maxFileBytes: number }).maxFileBytes, 4096);
});
