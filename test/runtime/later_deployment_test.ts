/**
 * A warm sandbox of a deployment does not read what lands in the server's `.compozy/` after it started
 * (outside break attempt brk37). A deployed project lives in the server's `.compozy/deployments/<sha256>/`,
 * so the server's `.compozy/` cannot be denied whole to its tools: it is denied entry by entry, all but the
 * served deployment, as the entries were when the sandbox started (Deno's flags name paths). A deploy swaps
 * the project without restarting the runtime, so the old deployment's warm sandboxes serve its executions
 * still running, and a `read: true` tool there listed `.compozy/deployments/` and read the next deployment's
 * `compozy.yaml` (and any new entry of `.compozy/`), which no tool may read. Such a process is now retired
 * before its next call, as one whose deny list misses a new `.env*` file; the one started in its place denies
 * the new entries. Real sandboxes through the ToolRunner.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { ToolRunner } from "../../pkg/runtime/tool_runner.ts";
import { call } from "./_helpers.ts";

const READER = `export default async (input: { store: string; paths: string[] }) => {
  const out: Record<string, string> = {};
  for (const path of input.paths) {
    try {
      out[path] = await Deno.readTextFile(path);
    } catch (e) {
      out[path] = (e as Error).name;
    }
  }
  const listed: string[] = [];
  for await (const entry of Deno.readDir(input.store + "/deployments")) listed.push(entry.name);
  return { out, listed: listed.sort() };
};`;

Deno.test("brk37: a deployment's warm read: true sandbox cannot read a deployment made after it started", async () => {
  const server = await Deno.makeTempDir({ prefix: "compozy-brk37-server-" });
  const store = join(server, ".compozy");
  const first = join(store, "deployments", "a".repeat(64));
  const next = join(store, "deployments", "b".repeat(64));
  await Deno.mkdir(join(first, "tools"), { recursive: true });
  await Deno.mkdir(join(store, "nats"), { recursive: true });
  await Deno.writeTextFile(join(server, "compozy.yaml"), "name: server\nversion: 1.0.0\n");
  await Deno.writeTextFile(join(first, "compozy.yaml"), "name: shop\nversion: 1.0.0\n");
  const tool = join(first, "tools/reader.ts");
  await Deno.writeTextFile(tool, READER);
  const paths = [join(next, "compozy.yaml"), join(store, "later.conf")];
  const runner = new ToolRunner({ maxWarmPerKey: 1 });
  const read = () =>
    runner.run(call(tool, { store, paths }, { permissions: { read: true }, timeoutMs: 30_000 }));
  try {
    const before = await read();
    assert.ok(before.ok, JSON.stringify(before));
    assert.deepEqual(before.output, {
      out: { [paths[0]]: "NotFound", [paths[1]]: "NotFound" },
      listed: ["a".repeat(64)],
    });
    // The next deployment is unpacked, and a file of the server's lands in its store.
    await Deno.mkdir(next, { recursive: true });
    await Deno.writeTextFile(paths[0], "name: payroll\nenv:\n  PAYROLL_TOKEN: tok-of-the-next-deployment\n");
    await Deno.writeTextFile(paths[1], "password: engine-pw\n");
    const after = await read();
    assert.ok(after.ok, JSON.stringify(after));
    // Before: the warm process read both files, the next deployment's token included.
    assert.deepEqual(after.output, {
      out: { [paths[0]]: "NotCapable", [paths[1]]: "NotCapable" },
      listed: ["a".repeat(64), "b".repeat(64)],
    });
  } finally {
    await runner.close();
    await Deno.remove(server, { recursive: true });
  }
});

const WRITER = `export default async (input: { paths: string[] }) => {
  const out: Record<string, string> = {};
  for (const path of input.paths) {
    try {
      await Deno.writeTextFile(path, "planted");
      out[path] = "written";
    } catch (e) {
      out[path] = (e as Error).name;
    }
  }
  return out;
};`;

Deno.test("brk37: a deployment's warm write: true sandbox cannot write into a deployment made after it started", async () => {
  // `write: true` is refused by compozy validate and by a deployment's load; a caller that skips them still
  // gets the protected paths denied, the later ones included.
  const server = await Deno.makeTempDir({ prefix: "compozy-brk37-server-" });
  const store = join(server, ".compozy");
  const first = join(store, "deployments", "a".repeat(64));
  const next = join(store, "deployments", "b".repeat(64));
  await Deno.mkdir(join(first, "tools"), { recursive: true });
  await Deno.writeTextFile(join(server, "compozy.yaml"), "name: server\nversion: 1.0.0\n");
  await Deno.writeTextFile(join(first, "compozy.yaml"), "name: shop\nversion: 1.0.0\n");
  const tool = join(first, "tools/writer.ts");
  await Deno.writeTextFile(tool, WRITER);
  const target = join(next, "tools/report.ts");
  const runner = new ToolRunner({ maxWarmPerKey: 1 });
  const write = () =>
    runner.run(call(tool, { paths: [target] }, { permissions: { write: true }, timeoutMs: 30_000 }));
  try {
    const before = await write();
    assert.ok(before.ok, JSON.stringify(before));
    assert.deepEqual(before.output, { [target]: "NotFound" });
    await Deno.mkdir(join(next, "tools"), { recursive: true });
    await Deno.writeTextFile(target, "export default () => 'report';\n");
    const after = await write();
    assert.ok(after.ok, JSON.stringify(after));
    // Before: the warm process rewrote the next deployment's tool, which then ran with that tool's grants.
    assert.deepEqual(after.output, { [target]: "NotCapable" });
    assert.equal(await Deno.readTextFile(target), "export default () => 'report';\n");
  } finally {
    await runner.close();
    await Deno.remove(server, { recursive: true });
  }
});
