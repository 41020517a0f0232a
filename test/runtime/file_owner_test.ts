/**
 * A tool cannot give its granted folder (or a file in it) to another user or group (outside break attempt
 * brk37). The kernel filter of a process that may write refused opening a folder to others by `chmod`
 * (brk36), but `chown` passed: a runtime running as root (as containers commonly do) let a tool granted
 * `write: ["./out"]` make `out` belong to `nobody`, and a runtime user could move it into any of its groups,
 * whose members then create entries in it (a folder is made `775`) after the runtime's start-up scan for
 * symlinks leading out of granted folders: a later call reads or writes through a link planted there. No tool
 * needs to change an owner, so the whole `chown` family now fails with `EPERM` in such a process. Real
 * sandboxes through the ToolRunner.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { ToolRunner } from "../../pkg/runtime/tool_runner.ts";
import { call, ToolDir } from "./_helpers.ts";

const GIVER = `import * as fs from "node:fs";
import * as fsp from "node:fs/promises";

export default async (input: { out: string; uid: number; gid: number }) => {
  const { uid, gid } = input;
  const at = (name: string) => input.out + "/" + name;
  Deno.writeTextFileSync(at("file"), "x");
  const attempts: Record<string, () => unknown> = {
    "Deno.chownSync of the granted folder": () => Deno.chownSync(input.out, uid, gid),
    "Deno.chown of its group only": () => Deno.chown(input.out, null, gid),
    "Deno.chown of a file": () => Deno.chown(at("file"), uid, gid),
    "node chownSync": () => fs.chownSync(input.out, uid, gid),
    "node lchownSync": () => fs.lchownSync(at("file"), uid, gid),
    "node promises.chown": () => fsp.chown(input.out, uid, gid),
    "node fchownSync": () => {
      const fd = fs.openSync(at("file"), "r");
      try { fs.fchownSync(fd, uid, gid); } finally { fs.closeSync(fd); }
    },
    "node FileHandle.chown": async () => {
      const handle = await fsp.open(at("file"), "r");
      try { await handle.chown(uid, gid); } finally { await handle.close(); }
    },
  };
  const outcomes: Record<string, string> = {};
  for (const [name, attempt] of Object.entries(attempts)) {
    try {
      await attempt();
      outcomes[name] = "done";
    } catch (e) {
      outcomes[name] = (e as Error).message;
    }
  }
  // Writing still works.
  Deno.writeTextFileSync(at("after"), "y");
  return outcomes;
};
`;

Deno.test({
  name: "brk37: a write grant cannot change who owns its folder or a file in it",
  ignore: Deno.build.os !== "linux",
  async fn() {
    const dir = new ToolDir();
    const runner = new ToolRunner({ maxWarmPerKey: 1, startTimeoutMs: 60_000 });
    try {
      const out = join(dir.path, "out");
      Deno.mkdirSync(out);
      const before = Deno.statSync(out);
      // As root, another user's ids (the case that hands the folder over); otherwise the runtime user's own
      // ids, a change the kernel would allow (the same owner, a group it belongs to): refused all the same.
      const root = Deno.uid() === 0;
      const target = root ? { uid: 65534, gid: 65534 } : { uid: Deno.uid()!, gid: Deno.gid()! };
      const tool = dir.tool("giver", GIVER);
      const result = await runner.run(
        call(tool, { out, ...target }, { permissions: { read: [out], write: [out] }, timeoutMs: 30_000 }),
      );
      assert.ok(result.ok, JSON.stringify(result));
      const outcomes = result.output as Record<string, string>;
      assert.equal(Object.keys(outcomes).length, 8);
      // Before: every one was done, and as root the folder and file then belonged to nobody.
      for (const [name, outcome] of Object.entries(outcomes)) {
        assert.match(outcome, /not permitted|EPERM/, `${name}: ${outcome}`);
      }
      for (const path of [out, join(out, "file"), join(out, "after")]) {
        const now = Deno.statSync(path);
        assert.deepEqual([now.uid, now.gid], [before.uid, before.gid], path);
      }
    } finally {
      await runner.close();
      dir.cleanup();
    }
  },
});
