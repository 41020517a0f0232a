/**
 * Cases of world_writable_test.ts, run in a process of their own (they set the process's umask to 0).
 *
 * A tool cannot open its granted folder (or a folder in it) to every user of the host (outside break attempt
 * brk36). `Deno.chmod(folder, 0o777)` worked on a `write` grant: any local user could then create entries
 * there after the runtime's start-up scan for symlinks leading out of a granted folder, and a later call read
 * or wrote through a link so planted. The kernel filter of a process that may write now refuses `chmod`,
 * `fchmod`, `fchmodat` and `fchmodat2` a mode giving others write and search (what adding an entry to a
 * folder takes), and the sandbox's start line clears others' write from the umask, so a folder it creates
 * cannot be open either, whatever the runtime's umask (0 here, as some containers run). Real sandboxes
 * through the ToolRunner.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { ToolRunner } from "../../pkg/runtime/tool_runner.ts";
import { call, ToolDir } from "./_helpers.ts";

const OPENER = `import * as fs from "node:fs";
import * as fsp from "node:fs/promises";

export default async (input: { out: string }) => {
  const at = (name: string) => input.out + "/" + name;
  Deno.writeTextFileSync(at("file"), "x");
  const attempts: Record<string, () => unknown> = {
    "Deno.chmodSync of the granted folder": () => Deno.chmodSync(input.out, 0o777),
    "Deno.chmod of a file": () => Deno.chmod(at("file"), 0o777),
    "node chmodSync of the granted folder": () => fs.chmodSync(input.out, 0o777),
    "node promises.chmod": () => fsp.chmod(at("file"), 0o673),
    "node fchmodSync": () => {
      const fd = fs.openSync(at("file"), "r");
      try { fs.fchmodSync(fd, 0o777); } finally { fs.closeSync(fd); }
    },
    "node FileHandle.chmod": async () => {
      const handle = await fsp.open(at("file"), "r");
      try { await handle.chmod(0o777); } finally { await handle.close(); }
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
  // Creations ask for every bit: the umask takes others' write away from a folder. Modes that do not open a
  // folder still change.
  const creations: Record<string, () => unknown> = {
    "Deno.mkdirSync mode": () => Deno.mkdirSync(at("made"), { mode: 0o777 }),
    "node mkdirSync": () => fs.mkdirSync(at("made-node")),
    "Deno.writeTextFileSync mode": () => Deno.writeTextFileSync(at("written"), "x", { mode: 0o666 }),
    "Deno.writeTextFileSync": () => Deno.writeTextFileSync(at("written-plain"), "x"),
    "node writeFileSync": () => fs.writeFileSync(at("written-node"), "x"),
    "node writeFileSync mode": () => fs.writeFileSync(at("written-node-mode"), "x", { mode: 0o666 }),
  };
  const created: Record<string, string> = {};
  for (const [name, create] of Object.entries(creations)) {
    try {
      await create();
      created[name] = "done";
    } catch (e) {
      created[name] = (e as Error).message;
    }
  }
  Deno.chmodSync(at("file"), 0o664);
  const mode = (path: string) => Deno.statSync(path).mode! & 0o777;
  return { outcomes, created, file: mode(at("file")), folder: mode(input.out) };
};
`;

/** Every folder under (and including) `root` that others may add entries to, with its mode. */
function openFolders(root: string): string[] {
  const found: string[] = [];
  const visit = (path: string, name: string) => {
    const info = Deno.lstatSync(path);
    if (!info.isDirectory) return;
    const mode = info.mode! & 0o777;
    if ((mode & 0o003) === 0o003) found.push(`${name} ${mode.toString(8)}`);
    for (const entry of Deno.readDirSync(path)) visit(join(path, entry.name), `${name}/${entry.name}`);
  };
  visit(root, "out");
  return found;
}

Deno.test({
  name: "brk36: a write grant cannot open its folder, or a folder in it, to every user of the host",
  ignore: Deno.build.os !== "linux",
  async fn() {
    const dir = new ToolDir();
    const runner = new ToolRunner({ maxWarmPerKey: 1, startTimeoutMs: 60_000 });
    const umask = Deno.umask(0);
    try {
      const out = join(dir.path, "out");
      Deno.mkdirSync(out);
      Deno.chmodSync(out, 0o755);
      const tool = dir.tool("opener", OPENER);
      const result = await runner.run(
        call(tool, { out }, { permissions: { read: [out], write: [out] }, timeoutMs: 30_000 }),
      );
      assert.ok(result.ok, JSON.stringify(result));
      const { outcomes, created, file, folder } = result.output as {
        outcomes: Record<string, string>;
        created: Record<string, string>;
        file: number;
        folder: number;
      };
      // Before: every chmod was done, and the folders made were 777 under the runtime's umask of 0.
      assert.deepEqual(openFolders(out), [], JSON.stringify({ outcomes, created }, null, 1));
      assert.equal(Object.keys(outcomes).length, 6);
      for (const [name, outcome] of Object.entries(outcomes)) {
        assert.match(outcome, /not permitted|EPERM/, `${name}: ${outcome}`);
      }
      // Every creation works, Node's mode option included (Deno's node:fs sets it by a chmod after writing).
      assert.deepEqual(Object.values(created), Array(6).fill("done"), JSON.stringify(created));
      assert.equal(Deno.statSync(join(out, "made")).mode! & 0o777, 0o775);
      // A mode that opens no folder to others still changes (group write included).
      assert.equal(file, 0o664);
      assert.equal(folder, 0o755);
    } finally {
      Deno.umask(umask);
      await runner.close();
      dir.cleanup();
    }
  },
});
