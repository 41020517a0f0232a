/**
 * A tool cannot move a symlink of its write-granted folder so that it leads out (outside break attempt
 * brk37). The start-up scan (link_scan.ts) accepts a symlink whose target lies inside the granted folder, and
 * a relative target is resolved from where the link is: `out/docs/notes -> ../notes.txt` leads to
 * `out/notes.txt`. A tool may rename what its `write` grant covers, so it moved that link to `out/notes`,
 * where `../notes.txt` is the file beside `out`, outside every grant, and read and wrote it through the link
 * in the same call (Deno checks the path as spelled, the kernel follows the link). A tool cannot make a
 * symlink, but it can move one someone else made. So a folder granted for writing that holds a symlink
 * whose relative target climbs (`..`) is now refused at the sandbox's start, naming the link; a target
 * without `..`, or an absolute one inside the folder, cannot lead out wherever the link is moved, and stays
 * allowed, as does a climbing link in a folder granted only for reading. Real sandboxes through the ToolRunner.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { ToolRunner } from "../../pkg/runtime/tool_runner.ts";
import { call, ToolDir } from "./_helpers.ts";

const MOVER = `export default async (input: { from: string; to: string }) => {
  await Deno.rename(input.from, input.to);
  let read: string;
  try {
    read = await Deno.readTextFile(input.to);
  } catch (e) {
    read = (e as Error).name;
  }
  return read;
};`;

Deno.test("brk37: a tool cannot move a symlink of its write grant so that it leads out of it", async () => {
  const dir = new ToolDir();
  const runner = new ToolRunner({ maxWarmPerKey: 1 });
  try {
    const out = join(dir.path, "out");
    Deno.mkdirSync(join(out, "docs"), { recursive: true });
    // Beside the granted folder, granted to no one.
    Deno.writeTextFileSync(join(dir.path, "notes.txt"), "outside the grant: db password hunter2\n");
    Deno.writeTextFileSync(join(out, "notes.txt"), "inside the grant\n");
    // Someone's relative link: it leads inside `out` where it is.
    Deno.symlinkSync("../notes.txt", join(out, "docs/notes"));
    const tool = dir.tool("mover", MOVER);
    const input = { from: join(out, "docs/notes"), to: join(out, "notes") };
    const moved = await runner.run(
      call(tool, input, { permissions: { read: [out], write: [out] }, timeoutMs: 30_000 }),
    );
    // Before: the call returned "outside the grant: db password hunter2\n".
    assert.ok(!moved.ok, JSON.stringify(moved.ok && moved.output));
    assert.equal(moved.failure.code, "tool_permission_denied");
    assert.match(moved.failure.message, /docs\/notes/);
    assert.match(moved.failure.message, /\.\./);
    assert.ok(Deno.lstatSync(join(out, "docs/notes")).isSymlink, "the link was not moved");

    // Read only, the same link cannot be moved: the grant is given.
    const reader = dir.tool("reader", `export default (p: string) => Deno.readTextFile(p);`);
    const read = await runner.run(
      call(reader, join(out, "docs/notes"), { permissions: { read: [out] }, timeoutMs: 30_000 }),
    );
    assert.deepEqual(read.ok ? read.output : read.failure, "inside the grant\n");

    // A link whose target does not climb stays inside wherever it is moved: the write grant is given.
    Deno.removeSync(join(out, "docs/notes"));
    Deno.symlinkSync("notes.md", join(out, "docs/latest"));
    Deno.writeTextFileSync(join(out, "docs/notes.md"), "md\n");
    const kept = await runner.run(
      call(tool, { from: join(out, "docs/latest"), to: join(out, "latest") }, {
        permissions: { read: [out], write: [out] },
        timeoutMs: 30_000,
      }),
    );
    // Moved to the folder's top, `notes.md` names out/notes.md, which does not exist.
    assert.deepEqual(kept.ok ? kept.output : kept.failure, "NotFound");
  } finally {
    await runner.close();
    dir.cleanup();
  }
});
