/**
 * A `write` grant is bounded per file (issue 10, sbx34): before, a tool granted `write: ["out"]` wrote 400 MiB
 * to one file in 1.4 s, and a few calls filled the disk, and with it the `.compozy/` store's. Now a file a
 * tool writes holds at most the runtime's `maxFileBytes` (`RLIMIT_FSIZE`, kernel_limits.ts): every way of
 * writing past it fails with "File too large", the call fails naming the tool and the bound, the file keeps
 * no more than the bound, and the tool's next call works. Many files under that bound are bounded per call
 * (`maxCallWriteBytes`, memory_watch.ts). Real sandboxes through the ToolRunner.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { ToolRunner } from "../../pkg/runtime/tool_runner.ts";
import { call, eventually, processAlive, ToolDir } from "./_helpers.ts";

const BOUND = 1024 * 1024;

const WRITER = `import * as fs from "node:fs";
import * as fsp from "node:fs/promises";

export default async (input: { out: string; bytes: number; big: string; catchAll?: boolean }) => {
  const at = (name: string) => input.out + "/" + name;
  const data = new Uint8Array(input.bytes);
  if (!input.catchAll) {
    await Deno.writeFile(at("plain"), data);
    return { wrote: data.length };
  }
  const attempts: Record<string, () => unknown> = {
    "Deno.writeFileSync": () => Deno.writeFileSync(at("a"), data),
    "Deno.writeTextFile": () => Deno.writeTextFile(at("b"), "x".repeat(input.bytes)),
    "Deno.FsFile.write loop": async () => {
      using file = await Deno.open(at("c"), { write: true, create: true });
      for (let i = 0; i < 8; i++) await file.write(data.subarray(0, input.bytes / 8));
    },
    "Deno.FsFile.seek past the bound": async () => {
      using file = await Deno.open(at("d"), { write: true, create: true });
      await file.seek(input.bytes, Deno.SeekMode.Start);
      await file.write(new Uint8Array(1));
    },
    "Deno.truncate to grow": () => (Deno.writeTextFileSync(at("e"), ""), Deno.truncate(at("e"), input.bytes)),
    "Deno.FsFile.truncate to grow": async () => {
      using file = await Deno.open(at("f"), { write: true, create: true });
      await file.truncate(input.bytes);
    },
    "Deno.writeFile append": () => (
      Deno.writeFileSync(at("g"), data.subarray(0, input.bytes / 2)),
        Deno.writeFileSync(at("g"), data, { append: true })
    ),
    "Deno.copyFile of a big file": () => Deno.copyFile(input.big, at("h")),
    "node writeFileSync": () => fs.writeFileSync(at("i"), data),
    "node appendFileSync": () => fs.appendFileSync(at("j"), data),
    "node createWriteStream": () =>
      new Promise<void>((resolve, reject) => {
        const stream = fs.createWriteStream(at("k"));
        stream.on("error", reject);
        stream.end(data, (e?: Error | null) => e ? reject(e) : resolve());
      }),
    "node FileHandle.write": async () => {
      const handle = await fsp.open(at("l"), "w");
      try { await handle.write(data); } finally { await handle.close(); }
    },
    "node writeSync at a position past the bound": () => {
      const fd = fs.openSync(at("m"), "w");
      try { fs.writeSync(fd, new Uint8Array(1), 0, 1, input.bytes); } finally { fs.closeSync(fd); }
    },
    "node truncateSync to grow": () => (fs.writeFileSync(at("n"), ""), fs.truncateSync(at("n"), input.bytes)),
    "node ftruncateSync to grow": () => {
      const fd = fs.openSync(at("o"), "w");
      try { fs.ftruncateSync(fd, input.bytes); } finally { fs.closeSync(fd); }
    },
    "node copyFileSync of a big file": () => fs.copyFileSync(input.big, at("p")),
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
  return outcomes;
};
`;

function largestFile(root: string): { name: string; size: number } {
  let largest = { name: "", size: 0 };
  for (const entry of Deno.readDirSync(root)) {
    const size = Deno.statSync(join(root, entry.name)).size;
    if (size > largest.size) largest = { name: entry.name, size };
  }
  return largest;
}

Deno.test("sbx34: a write past the per-file bound fails naming the tool and the bound; the next call works", async () => {
  const dir = new ToolDir();
  const out = join(dir.path, "out");
  Deno.mkdirSync(out);
  const runner = new ToolRunner({ maxWarmPerKey: 1, maxFileBytes: BOUND });
  try {
    const tool = dir.tool("writer", WRITER);
    const grants = { permissions: { write: [out] }, timeoutMs: 30_000, toolId: "writer" };
    const past = await runner.run(call(tool, { out, bytes: 3 * BOUND, big: "" }, grants));
    assert.ok(!past.ok, JSON.stringify(past));
    assert.equal(past.failure.code, "tool_threw");
    assert.match(
      past.failure.message,
      /^Tool "writer" wrote a file past the sandbox's bound of 1048576 bytes per file \(COMPOZY_SANDBOX_MAX_FILE_BYTES/,
    );
    assert.match(past.failure.message, /File too large/);
    assert.ok(Deno.statSync(join(out, "plain")).size <= BOUND);
    const next = await runner.run(call(tool, { out, bytes: 1000, big: "" }, grants));
    assert.deepEqual(next, { ...next, ok: true });
    assert.deepEqual((next as { output: unknown }).output, { wrote: 1000 });
  } finally {
    await runner.close();
    dir.cleanup();
  }
});

Deno.test("sbx34: no way of writing a file takes it past the bound", async () => {
  const dir = new ToolDir();
  const out = join(dir.path, "out");
  const data = join(dir.path, "data");
  Deno.mkdirSync(out);
  Deno.mkdirSync(data);
  // A big file the tool may read, put there by someone else, to copy.
  const big = join(data, "big");
  Deno.writeFileSync(big, new Uint8Array(2 * BOUND));
  const runner = new ToolRunner({ maxWarmPerKey: 1, maxFileBytes: BOUND });
  try {
    const tool = dir.tool("writer", WRITER);
    const result = await runner.run(
      call(tool, { out, bytes: 2 * BOUND, big, catchAll: true }, {
        permissions: { read: [data, out], write: [out] },
        timeoutMs: 30_000,
      }),
    );
    assert.ok(result.ok, JSON.stringify(result));
    const outcomes = result.output as Record<string, string>;
    for (const [name, outcome] of Object.entries(outcomes)) {
      assert.match(outcome, /File too large|EFBIG|file too large/, `${name}: ${outcome}`);
    }
    assert.equal(Object.keys(outcomes).length, 16);
    const largest = largestFile(out);
    assert.ok(largest.size <= BOUND, `${largest.name} holds ${largest.size} bytes`);
  } finally {
    await runner.close();
    dir.cleanup();
  }
});

const SIGNAL_RESETTER = `export default async (input: { out: string; bytes: number; reset: boolean }) => {
  if (input.reset) {
    // Deno puts SIGXFSZ's default action back when its last listener goes: not at once (in one CI run at
    // load the write right after failed EFBIG, the tool threw), so the write waits a moment for it.
    const listener = () => {};
    Deno.addSignalListener("SIGXFSZ", listener);
    Deno.removeSignalListener("SIGXFSZ", listener);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  Deno.writeFileSync(input.out + "/f", new Uint8Array(input.bytes));
  return "wrote";
};
`;

Deno.test("sbx34: a tool that puts SIGXFSZ's default back and writes past the bound fails naming the bound", async () => {
  const dir = new ToolDir();
  const out = join(dir.path, "out");
  Deno.mkdirSync(out);
  const runner = new ToolRunner({ maxWarmPerKey: 1, maxFileBytes: BOUND });
  try {
    const tool = dir.tool("resetter", SIGNAL_RESETTER);
    const grants = { permissions: { write: [out] }, timeoutMs: 30_000, toolId: "resetter" };
    const past = await runner.run(call(tool, { out, bytes: 2 * BOUND, reset: true }, grants));
    assert.ok(!past.ok, JSON.stringify(past));
    assert.equal(past.failure.code, "tool_crashed");
    assert.match(
      past.failure.message,
      /^Tool "resetter" wrote a file past the sandbox's bound of 1048576 bytes per file .*\(SIGXFSZ\)$/,
    );
    // Deno's own cache writes fall under the bound too, and with the default back one of them may end the
    // process before the tool's write: then there is no file.
    const written = [...Deno.readDirSync(out)].map((e) => Deno.statSync(join(out, e.name)).size);
    assert.ok(written.every((size) => size <= BOUND), `${written}`);
    const next = await runner.run(call(tool, { out, bytes: 1000, reset: false }, grants));
    assert.deepEqual(next.ok ? next.output : next.failure.message, "wrote");
  } finally {
    await runner.close();
    dir.cleanup();
  }
});

const MANY_FILES = `export default async (input: { out: string; files: number }) => {
  const mib = new Uint8Array(1024 * 1024);
  for (let i = 0; i < input.files; i++) {
    await Deno.writeFile(input.out + "/f" + i, mib);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return "wrote " + input.files;
};
`;

Deno.test("sbx34: a call that writes many files past the call's bound is killed tool_writes_exceeded", async () => {
  const dir = new ToolDir();
  const out = join(dir.path, "out");
  Deno.mkdirSync(out);
  // Each file is under the per-file bound; 256 of them would take 5 s at the least.
  const runner = new ToolRunner({ maxWarmPerKey: 1, maxFileBytes: BOUND, maxCallWriteBytes: 4 * BOUND });
  try {
    const tool = dir.tool("many", MANY_FILES);
    const grants = { permissions: { write: [out] }, timeoutMs: 60_000, toolId: "many" };
    const result = await runner.run(call(tool, { out, files: 256 }, grants));
    assert.ok(!result.ok, JSON.stringify(result));
    assert.equal(result.failure.code, "tool_writes_exceeded");
    assert.match(
      result.failure.message,
      /^Tool "many" was killed: it wrote \d+ bytes of files in one call, past the bound of 4194304 bytes \(COMPOZY_SANDBOX_MAX_CALL_WRITE_BYTES\)$/,
    );
    assert.ok([...Deno.readDirSync(out)].length < 256);
    for (const entry of Deno.readDirSync(out)) Deno.removeSync(join(out, entry.name));
    // A call under the bound runs, in a fresh process.
    const next = await runner.run(call(tool, { out, files: 2 }, grants));
    assert.deepEqual(next.ok ? next.output : next.failure.message, "wrote 2");
  } finally {
    await runner.close();
    dir.cleanup();
  }
});

const BURST = `export default (input: { out: string; files: number }) => {
  const mib = new Uint8Array(1024 * 1024);
  for (let i = 0; i < input.files; i++) Deno.writeFileSync(input.out + "/b" + i, mib);
  return "wrote " + input.files;
};
`;

Deno.test("sbx34: a call that writes past the call's bound and returns before a sample still loses its process", async () => {
  const dir = new ToolDir();
  const out = join(dir.path, "out");
  Deno.mkdirSync(out);
  const runner = new ToolRunner({ maxWarmPerKey: 1, maxFileBytes: BOUND, maxCallWriteBytes: 4 * BOUND });
  try {
    const tool = dir.tool("burst", BURST);
    const grants = { permissions: { write: [out] }, timeoutMs: 30_000, toolId: "burst" };
    const burst = await runner.run(call(tool, { out, files: 12 }, grants));
    const [pid] = runner.stats().pids;
    if (burst.ok) {
      // Returned before a sample saw it running: the process may not serve another call.
      assert.ok(await eventually(() => !processAlive(pid), 10_000), `sandbox ${pid} still serves calls`);
    } else {
      assert.equal(burst.failure.code, "tool_writes_exceeded");
    }
    const next = await runner.run(call(tool, { out, files: 1 }, grants));
    assert.deepEqual(next.ok ? next.output : next.failure.message, "wrote 1");
  } finally {
    await runner.close();
    dir.cleanup();
  }
});

const ONE_FILE_A_CALL = `export default async (input: { out: string; n: number }) => {
  await Deno.writeFile(input.out + "/c" + input.n, new Uint8Array(1024 * 1024));
  await new Promise((resolve) => setTimeout(resolve, 100));
  return input.n;
};
`;

Deno.test("sbx34: calls that follow one another in one process are bounded each, not added up", async () => {
  const dir = new ToolDir();
  const out = join(dir.path, "out");
  Deno.mkdirSync(out);
  const runner = new ToolRunner({ maxWarmPerKey: 1, maxFileBytes: BOUND, maxCallWriteBytes: 4 * BOUND });
  try {
    const tool = dir.tool("steady", ONE_FILE_A_CALL);
    const grants = { permissions: { write: [out] }, timeoutMs: 30_000, toolId: "steady" };
    const outputs: unknown[] = [];
    // 8 MiB in all, 1 MiB a call, the next call sent as soon as one returns.
    for (let n = 0; n < 8; n++) {
      const result = await runner.run(call(tool, { out, n }, grants));
      outputs.push(result.ok ? result.output : result.failure.message);
    }
    assert.deepEqual(outputs, [0, 1, 2, 3, 4, 5, 6, 7]);
    assert.equal(runner.stats().spawned, 1);
  } finally {
    await runner.close();
    dir.cleanup();
  }
});

/**
 * Returns at once, leaving a loop parked on `Atomics.waitAsync` (brk34) that writes 1 MiB every `pauseMs`:
 * 40 ms (every sample sees a write) or 130 ms (samples without a write between those with one).
 */
const LEFTOVER_WRITER = `export default (input: { out: string; pauseMs: number }) => {
  const cell = new Int32Array(new SharedArrayBuffer(4));
  const mib = new Uint8Array(1024 * 1024);
  let n = 0;
  (Atomics as unknown as { waitAsync(a: Int32Array, i: number, v: number, t: number): { value: Promise<unknown> } })
    .waitAsync(cell, 0, 0, 100).value.then(() => {
      for (;;) {
        Deno.writeFileSync(input.out + "/late" + n++, mib);
        Atomics.wait(cell, 0, 0, input.pauseMs);
      }
    });
  return "returned";
};
`;

Deno.test("brk34: a call's left-over code that writes after it returned loses its process, and the next call is not blamed", async () => {
  const dir = new ToolDir();
  const out = join(dir.path, "out");
  Deno.mkdirSync(out);
  const runner = new ToolRunner({ maxWarmPerKey: 1, maxFileBytes: BOUND, maxCallWriteBytes: 4 * BOUND });
  try {
    const tool = dir.tool("leftover", LEFTOVER_WRITER);
    const grants = { permissions: { write: [out] }, timeoutMs: 30_000, toolId: "leftover" };
    for (const pauseMs of [40, 130]) {
      const first = await runner.run(call(tool, { out, pauseMs }, grants));
      assert.deepEqual(first.ok ? first.output : first.failure.message, "returned");
      const [pid] = runner.stats().pids;
      // Before, the process lived on writing ~25 MiB/s (752 MB in 30 s under these bounds).
      assert.ok(
        await eventually(() => !processAlive(pid), 15_000),
        `${pauseMs} ms: sandbox ${pid} writes on`,
      );
    }
    const files = [...Deno.readDirSync(out)].length;
    assert.ok(files < 200, `${files} files written after the calls returned`);
    const writer = dir.tool("writer", WRITER);
    const next = await runner.run(
      call(writer, { out, bytes: 1, big: "" }, { ...grants, toolId: "writer" }),
    );
    assert.deepEqual(next.ok ? next.output : next.failure.message, { wrote: 1 });
  } finally {
    await runner.close();
    dir.cleanup();
  }
});
