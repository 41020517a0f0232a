/**
 * A tool granted `write` on a folder can nest folders in it past the system's path length (PATH_MAX, 4096 on
 * Linux): it makes two chains of ~2,800 characters, each creatable, then renames one into the other. The
 * symlink scan that each sandbox start runs on a granted folder (link_scan.ts) then failed on an `lstat`
 * ("File name too long"), uncaught: every later start of every tool granted that folder failed
 * `tool_crashed`, `retryable: true`, a retry policy running it again to the same end, with a raw internal
 * error of several kilobytes as its message (issue 10, sbx). A folder the scan cannot read is now a refused
 * grant (`tool_permission_denied`, not retried), saying so. Real sandbox processes.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { ToolRunner } from "../../pkg/runtime/tool_runner.ts";
import { call, ToolDir } from "./_helpers.ts";

const NEST = `
export default async (input: { out: string }) => {
  const chain = Array(14).fill("d".repeat(200)).join("/");
  await Deno.mkdir(input.out + "/x/" + chain, { recursive: true });
  await Deno.mkdir(input.out + "/y/" + chain, { recursive: true });
  await Deno.rename(input.out + "/y", input.out + "/x/" + chain + "/y");
  return "nested";
};
`;

Deno.test("a folder nested past the path length in a granted folder refuses the grant, not a retried crash", async () => {
  const dir = new ToolDir("compozy-deep-grant-");
  const runner = new ToolRunner({ maxWarmPerKey: 1 });
  const out = join(dir.path, "out");
  try {
    await Deno.mkdir(out);
    const grants = { read: [out], write: [out] };
    const nest = await runner.run(
      call(dir.tool("nest", NEST), { out }, { permissions: grants, timeoutMs: 30_000 }),
    );
    assert.ok(nest.ok, JSON.stringify(nest));
    // Another tool granted the same folder starts a sandbox of its own, which scans it.
    const reader = dir.tool("reader", "export default () => 1;");
    const result = await runner.run(call(reader, {}, { permissions: { read: [out] }, timeoutMs: 30_000 }));
    assert.ok(!result.ok, JSON.stringify(result));
    // Before: tool_crashed, retryable, "File name too long (os error 36): lstat '<4,000+ characters>'".
    assert.equal(result.failure.code, "tool_permission_denied", result.failure.message);
    assert.equal(result.failure.retryable, false);
    assert.match(result.failure.message, /cannot be checked for symlinks/);
    assert.ok(result.failure.message.length < 1_000, result.failure.message);
  } finally {
    await runner.close();
    dir.cleanup();
  }
});
