/**
 * The runtime process started without a NATS to reach (dev stopping while a runtime starts, outside review
 * B6's side note) says so in one line and exits 1, instead of an uncaught error's stack trace.
 */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";

Deno.test("runtime: NATS unreachable at start is one line on stderr and exit code 1", async () => {
  // A port nothing listens on: taken from the system, then released.
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  const main = fileURLToPath(new URL("../../pkg/runtime/main.ts", import.meta.url));
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--unstable-worker-options", main, "--nats-url", `nats://127.0.0.1:${port}`],
    env: { NO_COLOR: "1" },
    stdin: "null",
  }).output();
  const stderr = new TextDecoder().decode(out.stderr).trim();
  assert.equal(out.code, 1, stderr);
  assert.match(
    stderr,
    new RegExp(`^compozy runtime: Cannot connect to NATS at nats://127\\.0\\.0\\.1:${port}`),
  );
  assert.equal(stderr.split("\n").length, 1, stderr);
});
