/**
 * A sandbox process may hold at most `maxDescriptors` file descriptors (red team brk-sbx H1, H3). Before, it
 * inherited the runtime's limit (20,000 here): a tool granted `net` held 646 MiB of kernel socket buffers
 * with 160 loopback connections it never read (memory no limit of the sandbox counts), and one whose
 * module's load opened 19,000 files stalled the runtime's thread 0.3–1 s per call while the open-file check
 * listed them. Real sandbox processes, except the last test (a plain child process).
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { DEFAULT_MAX_DESCRIPTORS } from "../../pkg/runtime/descriptor_limit.ts";
import { OpenFileWatch } from "../../pkg/runtime/open_files.ts";
import { ToolRunner } from "../../pkg/runtime/tool_runner.ts";
import { call, ToolDir } from "./_helpers.ts";

/** Opens `path` until refused (at most `tries` times) and reports how many it got and why it stopped. */
const OPENER = `export default (input: { path: string; tries: number }) => {
  const files: Deno.FsFile[] = [];
  let stopped = "never";
  try {
    while (files.length < input.tries) files.push(Deno.openSync(input.path));
  } catch (e) {
    stopped = (e as Error).message;
  }
  for (const file of files) file.close();
  return { opened: files.length, stopped };
};`;

/** Connects to its own loopback listener until refused (at most `tries` times): two descriptors each. */
const CONNECTOR = `export default async (input: { tries: number; port: number }) => {
  const port = input.port;
  const listener = Deno.listen({ hostname: "127.0.0.1", port });
  const accepted: Deno.Conn[] = [];
  const accepting = (async () => {
    try {
      for await (const conn of listener) accepted.push(conn);
    } catch { /* refused an accept: the limit */ }
  })();
  const conns: Deno.Conn[] = [];
  let stopped = "never";
  try {
    while (conns.length < input.tries) conns.push(await Deno.connect({ hostname: "127.0.0.1", port }));
  } catch (e) {
    stopped = (e as Error).message;
  }
  for (const conn of [...conns, ...accepted]) conn.close();
  listener.close();
  await accepting;
  return { connected: conns.length, stopped };
};`;

function limitOf(pid: number): string | undefined {
  return Deno.readTextFileSync(`/proc/${pid}/limits`).split("\n").find((l) => l.startsWith("Max open files"));
}

Deno.test({
  name: "a sandbox process holds at most maxDescriptors descriptors, files and sockets alike",
  ignore: Deno.build.os !== "linux",
  fn: async (t) => {
    const dir = new ToolDir();
    const data = Deno.makeTempDirSync({ prefix: "compozy-descriptors-" });
    const path = join(data, "f.txt");
    Deno.writeTextFileSync(path, "x");
    const runner = new ToolRunner({ maxWarmPerKey: 1, startTimeoutMs: 60_000 });
    try {
      await t.step("files: the tool gets what Deno leaves of the default limit, not thousands", async () => {
        const tool = dir.tool("opener", OPENER);
        const result = await runner.run(
          call(tool, { path, tries: 2_000 }, { permissions: { read: [data] }, timeoutMs: 60_000 }),
        );
        assert.ok(result.ok, JSON.stringify(result));
        const { opened, stopped } = result.output as { opened: number; stopped: string };
        // Before: 2,000 opened (the runtime's limit). Deno and the sandbox hold ~30 of the 128.
        assert.ok(opened > 64 && opened < DEFAULT_MAX_DESCRIPTORS, JSON.stringify(result.output));
        assert.match(stopped, /Too many open files/);
        const pid = runner.stats().pids[0];
        assert.match(limitOf(pid) ?? "", /^Max open files\s+128\s+128\s/);
        // The process is still fit: the call closed its files, the next runs in it.
        const again = await runner.run(
          call(tool, { path, tries: 10 }, { permissions: { read: [data] }, timeoutMs: 60_000 }),
        );
        assert.deepEqual(again.ok && again.output, { opened: 10, stopped: "never" }, JSON.stringify(again));
        assert.deepEqual(runner.stats().pids, [pid]);
      });

      await t.step("sockets: a net grant holds a bounded number of connections", async () => {
        const tool = dir.tool("connector", CONNECTOR);
        const free = Deno.listen({ hostname: "127.0.0.1", port: 0 });
        const { port } = free.addr as Deno.NetAddr;
        free.close();
        // The address with its port: a host without one connects only (kernel_limits.ts).
        const permissions = { net: [`127.0.0.1:${port}`] };
        const result = await runner.run(call(tool, { tries: 200, port }, { permissions, timeoutMs: 60_000 }));
        assert.ok(result.ok, JSON.stringify(result));
        const { connected, stopped } = result.output as { connected: number; stopped: string };
        // Before: 200 (each one's unread buffers held ~4 MiB of kernel memory). Now two descriptors each.
        assert.ok(connected > 20 && connected < DEFAULT_MAX_DESCRIPTORS / 2, JSON.stringify(result.output));
        assert.notEqual(stopped, "never");
      });

      await t.step("Deno still works under the limit: parallel fetches, twice in one process", async () => {
        const server = Deno.serve(
          { hostname: "127.0.0.1", port: 0, onListen() {} },
          () => new Response("ok"),
        );
        try {
          const tool = dir.tool(
            "fetcher",
            `export default async (input: { url: string; n: number }) =>
              (await Promise.all([...Array(input.n)].map(async () => (await fetch(input.url)).text()))).join("");`,
          );
          const url = `http://127.0.0.1:${server.addr.port}/`;
          for (let round = 0; round < 2; round++) {
            const result = await runner.run(
              call(tool, { url, n: 40 }, { permissions: { net: ["127.0.0.1"] }, timeoutMs: 60_000 }),
            );
            assert.deepEqual(result.ok && result.output, "ok".repeat(40), JSON.stringify(result));
          }
        } finally {
          await server.shutdown();
        }
      });

      await t.step("maxDescriptors sets the limit", async () => {
        const low = new ToolRunner({ maxWarmPerKey: 1, startTimeoutMs: 60_000, maxDescriptors: 64 });
        try {
          const tool = dir.tool("opener", OPENER);
          const result = await low.run(
            call(tool, { path, tries: 2_000 }, { permissions: { read: [data] }, timeoutMs: 60_000 }),
          );
          assert.ok(result.ok, JSON.stringify(result));
          assert.ok((result.output as { opened: number }).opened < 64, JSON.stringify(result.output));
          assert.match(limitOf(low.stats().pids[0]) ?? "", /^Max open files\s+64\s+64\s/);
        } finally {
          await low.close();
        }
        assert.throws(() => new ToolRunner({ maxDescriptors: 16 }), RangeError);
      });
    } finally {
      await runner.close();
      dir.cleanup();
      Deno.removeSync(data, { recursive: true });
    }
  },
});

Deno.test({
  name: "the open-file check does not list a process holding more descriptors than the bound",
  ignore: Deno.build.os !== "linux",
  fn: async () => {
    // A process without the limit (as a sandbox started where there is no /bin/sh) holding 3,000 files.
    const child = new Deno.Command(Deno.execPath(), {
      args: [
        "eval",
        `const f = []; for (let i = 0; i < 3000; i++) f.push(Deno.openSync(Deno.execPath())); console.log("ready");
         setInterval(() => {}, 1_000_000);`, // alive until killed (a bare pending promise ends deno eval)
      ],
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    try {
      const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
      assert.equal((await reader.read()).value?.trim(), "ready");
      reader.releaseLock();
      const watch = new OpenFileWatch(DEFAULT_MAX_DESCRIPTORS);
      const started = performance.now();
      const reason = watch.check(child);
      const took = performance.now() - started;
      // Before: the first look listed and stat'ed all 3,000 (the baseline) and accepted them.
      assert.match(reason ?? "", /^it holds \d{4} descriptors, more than the 128 a sandbox may hold$/);
      assert.ok(took < 50, `the check took ${took} ms`);
    } finally {
      child.kill("SIGKILL");
      await child.status;
      await child.stdout.cancel().catch(() => {});
    }
  },
});
