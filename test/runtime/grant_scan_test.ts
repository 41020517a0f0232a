/**
 * The symlink scan of granted folders (pkg/runtime/link_scan.ts) is bounded: refusing a read grant on /tmp
 * took ~100 s at load 15, walked again at every sandbox start and by every concurrent start. Now concurrent
 * starts share one scan, and a later start of an unchanged folder reads no folder (it `lstat`s the ones the
 * scan read); a symlink made since, at any depth, is still refused. The folders the scan reads are counted
 * with a spy on `Deno.readDir`/`Deno.readDirSync` (what the scan on main used, and what it uses now).
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { resolveGrants } from "../../pkg/runtime/grant_paths.ts";
import { normalizePermissions } from "../../pkg/runtime/permissions.ts";
import { ToolFailure } from "../../pkg/runtime/tool_failure.ts";

/** Counts the folders read while `fn` runs. */
async function foldersRead(fn: () => Promise<unknown>): Promise<number> {
  const deno = Deno as unknown as Record<string, unknown>;
  const original = { readDir: Deno.readDir, readDirSync: Deno.readDirSync };
  let reads = 0;
  deno.readDir = (path: string | URL) => (reads++, original.readDir(path));
  deno.readDirSync = (path: string | URL) => (reads++, original.readDirSync(path));
  try {
    await fn();
  } finally {
    deno.readDir = original.readDir;
    deno.readDirSync = original.readDirSync;
  }
  return reads;
}

/** `<root>/data/d<i>/f<j>`: `folders` folders of `files` files, with times older than the scan trusts. */
async function tree(folders: number, files: number): Promise<{ root: string; data: string }> {
  const root = await Deno.makeTempDir({ prefix: "compozy-scan-" });
  const data = join(root, "data");
  // Synchronous: up to 21,000 files, and an awaited write each is a turn of the blocking thread pool that
  // every file of a `deno test --parallel` run shares (this set-up took most of a 7 s test in a full run).
  for (let i = 0; i < folders; i++) {
    Deno.mkdirSync(join(data, `d${i}`, "deep"), { recursive: true });
    for (let j = 0; j < files; j++) Deno.writeTextFileSync(join(data, `d${i}`, `f${j}`), "x");
  }
  // A folder changed within 2 s of a scan is not trusted (a change in the same clock tick would not show);
  // a folder's change time cannot be set back, so wait.
  await new Promise((r) => setTimeout(r, 2_500));
  return { root, data };
}

function grant(root: string, data: string) {
  return resolveGrants(normalizePermissions({ read: [data] }, root), root);
}

async function refusal(p: Promise<unknown>): Promise<ToolFailure> {
  try {
    await p;
  } catch (e) {
    if (e instanceof ToolFailure) return e;
    throw e;
  }
  assert.fail("the grant was accepted");
}

Deno.test("a later start of an unchanged granted folder reads no folder; a new escaping link is still refused", async () => {
  const { root, data } = await tree(20, 50);
  try {
    assert.ok(await foldersRead(() => grant(root, data)) >= 41, "the first start scans every folder");
    // Before: every start walked the whole folder again.
    assert.equal(await foldersRead(() => grant(root, data)), 0);
    // A symlink made since, two levels down, changes its folder's times: scanned again, refused.
    await Deno.symlink("/etc", join(data, "d7", "deep", "etc_link"));
    const failure = await refusal(grant(root, data));
    assert.equal(failure.code, "tool_permission_denied");
    assert.match(failure.message, /d7\/deep\/etc_link inside it points outside it, to \/etc/);
    assert.equal((await refusal(grant(root, data))).code, "tool_permission_denied");
    // A folder replaced by a symlink (its parent changes) is seen too.
    await Deno.remove(join(data, "d7", "deep"), { recursive: true });
    assert.ok(await foldersRead(() => grant(root, data)) > 0);
    await Deno.remove(join(data, "d3"), { recursive: true });
    await Deno.symlink("/etc", join(data, "d3"));
    assert.match((await refusal(grant(root, data))).message, /d3 inside it points outside it/);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("concurrent starts of one granted folder share one scan", async () => {
  const { root, data } = await tree(10, 20);
  try {
    // Before: eight starts walked the folder eight times (8 × 21 folders).
    const reads = await foldersRead(() => Promise.all(Array.from({ length: 8 }, () => grant(root, data))));
    assert.equal(reads, 21);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("a folder too large to scan is refused once, then by its kept result", async () => {
  // 21 folders of 1,000 files: over the 20,000 entries a scan looks at.
  const { root, data } = await tree(21, 1_000);
  try {
    let failure!: ToolFailure;
    const first = await foldersRead(async () => failure = await refusal(grant(root, data)));
    assert.equal(failure.code, "tool_permission_denied");
    assert.match(failure.message, /more than 20000 entries/);
    assert.ok(first > 0);
    // Before: each start walked 20,000 entries again before refusing (the ~100 s of /tmp at load 15).
    assert.equal(await foldersRead(() => refusal(grant(root, data))), 0);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
