/**
 * A protected path holding a comma is denied, not split (outside break attempt brk37). The sandbox names its
 * denials in one `--deny-read=a,b,…` flag, and Deno 2.9.6 splits such a list at every comma with no escape
 * (`,,` is refused as an empty entry): a backup `.env,orig` at the project's root, or an `env_file` named
 * `secrets, prod.env`, became two entries naming nothing, and a `read: true` tool read both. A sandbox whose
 * path flags would hold a comma is now refused before it starts (`tool_permission_denied`, naming the path),
 * since no flag can deny it. Real sandboxes through the ToolRunner.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { ToolRunner } from "../../pkg/runtime/tool_runner.ts";
import { call, ToolDir } from "./_helpers.ts";

const READER = `export default async (input: { paths: string[] }) => {
  const out: Record<string, string> = {};
  for (const path of input.paths) {
    try {
      out[path] = await Deno.readTextFile(path);
    } catch (e) {
      out[path] = (e as Error).name;
    }
  }
  return out;
};`;

Deno.test("brk37: a read: true tool cannot read a .env* file or env_file whose name holds a comma", async () => {
  const dir = new ToolDir();
  const runner = new ToolRunner({ maxWarmPerKey: 1 });
  try {
    const backup = join(dir.path, ".env,orig");
    const envFile = join(dir.path, "secrets, prod.env");
    Deno.writeTextFileSync(
      join(dir.path, "compozy.yaml"),
      "name: p\nversion: 1.0.0\nenv_file: secrets, prod.env\n",
    );
    Deno.writeTextFileSync(join(dir.path, ".env"), "STRIPE_KEY=sk_live_1\n");
    Deno.writeTextFileSync(backup, "STRIPE_KEY=sk_live_in_the_backup\n");
    Deno.writeTextFileSync(envFile, "STRIPE_KEY=sk_live_in_the_env_file\n");
    const tool = dir.tool("reader", READER);
    const paths = [join(dir.path, ".env"), backup, envFile];
    const read = () => runner.run(call(tool, { paths }, { permissions: { read: true }, timeoutMs: 30_000 }));

    // Before: {".env": "NotCapable", ".env,orig": "STRIPE_KEY=sk_live_in_the_backup\n", "secrets, prod.env": …}.
    const refused = await read();
    assert.ok(!refused.ok, JSON.stringify(refused.ok && refused.output));
    assert.equal(refused.failure.code, "tool_permission_denied");
    assert.match(refused.failure.message, /comma/);
    assert.ok(refused.failure.message.includes(dir.path), refused.failure.message);

    // Renamed, both are denied as usual.
    const renamedBackup = join(dir.path, ".env.orig");
    const renamedEnvFile = join(dir.path, "secrets.prod.env");
    Deno.renameSync(backup, renamedBackup);
    Deno.renameSync(envFile, renamedEnvFile);
    Deno.writeTextFileSync(
      join(dir.path, "compozy.yaml"),
      "name: p\nversion: 1.0.0\nenv_file: secrets.prod.env\n",
    );
    const renamed = await runner.run(
      call(tool, { paths: [renamedBackup, renamedEnvFile] }, {
        permissions: { read: true },
        timeoutMs: 30_000,
      }),
    );
    assert.ok(renamed.ok, JSON.stringify(renamed));
    assert.deepEqual(renamed.output, { [renamedBackup]: "NotCapable", [renamedEnvFile]: "NotCapable" });
  } finally {
    await runner.close();
    dir.cleanup();
  }
});
