/**
 * The second red team (an outside review, one afternoon): attacks beyond redteam_test.ts and
 * sandbox_escape_test.ts, with real sandbox processes. Three worked (process state one call left for the
 * next: the working directory, the environment, the performance timeline) and are closed by
 * pkg/runtime/process_state.ts; the others were refused and are kept here with their failure codes.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { type ToolResult, ToolRunner } from "../../pkg/runtime/tool_runner.ts";
import { call, eventually, processAlive, ToolDir, withDeniedBusPort } from "./_helpers.ts";

function failure(result: ToolResult): { code: string; message: string } {
  assert.ok(!result.ok, `expected a failure, got ${JSON.stringify(result)}`);
  return result.failure;
}

function output(result: ToolResult): unknown {
  assert.ok(result.ok, `expected a result, got ${JSON.stringify(result)}`);
  return result.output;
}

Deno.test("red team 2: process state one call changes is not the next call's", async (t) => {
  const dir = new ToolDir();
  Deno.mkdirSync(join(dir.path, "data"));
  Deno.writeTextFileSync(join(dir.path, "data", "f.txt"), "in data");
  Deno.writeTextFileSync(join(dir.path, "f.txt"), "in the tool's folder");
  const runner = new ToolRunner({ maxWarmPerKey: 1 });
  const env = { GRANTED: "the value this worker was started with" };
  const permissions = { read: ["."], env: ["GRANTED"] };
  // `process` named in the source: the worker gets Node's process object too, with its chdir and env.
  // Node's process.chdir is refused by Deno itself in a worker ("not supported in workers").
  for (
    const [name, chdir, setEnv, refusal] of [
      [
        "deno",
        `Deno.chdir("data")`,
        `Deno.env.set("GRANTED", secret)`,
        /Deno\.chdir.*refused in a tool sandbox/,
      ],
      [
        "node",
        `(globalThis as any).process.chdir("data")`,
        `(globalThis as any).process.env.GRANTED = secret`,
        /process\.chdir\(\) is not supported in workers/,
      ],
    ] as const
  ) {
    const tool = dir.tool(
      `state_${name}`,
      `export default (input: { mode: string; secret: string }) => {
         const secret = input.secret;
         if (input.mode === "chdir") { ${chdir}; return Deno.cwd(); }
         if (input.mode === "set") {
           ${setEnv};
           performance.mark("m", { detail: secret });
           return [Deno.pid, Deno.env.get("GRANTED")];
         }
         return [
           Deno.pid,
           Deno.readTextFileSync("f.txt"),
           Deno.env.get("GRANTED"),
           performance.getEntriesByType("mark").map((m) => (m as PerformanceMark).detail),
         ];
       };`,
    );
    const run = (mode: string) =>
      runner.run(
        call(tool, { mode, secret: "data of the earlier call" }, { env, permissions, timeoutMs: 30_000 }),
      );
    try {
      await t.step(`${name}: changing the working directory is refused`, async () => {
        const f = failure(await run("chdir"));
        assert.equal(f.code, name === "deno" ? "tool_permission_denied" : "tool_threw");
        assert.match(f.message, refusal);
      });
      await t.step(`${name}: an env value and a mark set by a call are gone in the next`, async () => {
        const [pid, during] = output(await run("set")) as [number, string];
        assert.equal(during, "data of the earlier call");
        const [later, file, value, marks] = output(await run("read")) as [number, string, string, unknown[]];
        assert.equal(later, pid, "the same warm worker ran both calls");
        assert.equal(file, "in the tool's folder");
        assert.equal(value, env.GRANTED);
        assert.deepEqual(marks, []);
      });
    } catch (e) {
      await runner.close();
      dir.cleanup();
      throw e;
    }
  }
  await runner.close();
  dir.cleanup();
});

Deno.test("red team 2: an env name the tool may not read cannot be set either, nor escape through set", async () => {
  const dir = new ToolDir();
  const runner = new ToolRunner({});
  try {
    const tool = dir.tool(
      "env_other",
      `export default () => { Deno.env.set("PATH", "/tmp"); return "set"; };`,
    );
    const f = failure(
      await runner.run(call(tool, null, { permissions: { env: ["GRANTED"] }, timeoutMs: 30_000 })),
    );
    assert.equal(f.code, "tool_permission_denied");
  } finally {
    await runner.close();
    dir.cleanup();
  }
});

Deno.test("red team 2: the bus port is out of reach by proxies, DNS servers and unspecified addresses", async (t) => {
  await withDeniedBusPort(async ({ port, connections, dir, runner }) => {
    const cases: Array<[string, string, Record<string, unknown>]> = [
      // A proxy is a connection Deno makes for the fetch: checked like any other, whatever the URL's host.
      [
        "proxy_client",
        `const client = Deno.createHttpClient({ proxy: { url: "http://127.0.0.1:${port}" } });
         return (await fetch("http://example.com/", { client })).status;`,
        { net: ["example.com"] },
      ],
      [
        "dns_server",
        `return await Deno.resolveDns("example.com", "A", { nameServer: { ipAddr: "127.0.0.1", port: ${port} } });`,
        { net: true },
      ],
      [
        "websocket",
        `return await new Promise((ok, no) => { const w = new WebSocket("ws://0.0.0.0:${port}/"); w.onopen = () => ok("open"); w.onerror = () => no(new Error("ws")); });`,
        { net: true },
      ],
    ];
    for (
      const host of [
        "0",
        "0x0",
        "::",
        "0::0",
        "0:0:0:0:0:0:0:0",
        "::ffff:0.0.0.0",
        "::ffff:0:0",
        "0177.0.0.1",
      ]
    ) {
      cases.push([
        `connect ${host}`,
        `const c = await Deno.connect({ hostname: "${host}", port: ${port} }); c.close(); return "connected";`,
        { net: true },
      ]);
    }
    // One module for every case (a case is picked by its input), so each grant starts one process only.
    const tool = dir.tool(
      "bus",
      `export default async (i: number) => {
         switch (i) {${cases.map(([, body], i) => `\n           case ${i}: { ${body} }`).join("")}
         }
       };`,
    );
    for (const [i, [name, , permissions]] of cases.entries()) {
      await t.step(name, async () => {
        const result = await runner.run(call(tool, i, { permissions, timeoutMs: 30_000 }));
        assert.equal(failure(result).code, "tool_permission_denied", name);
      });
    }
    assert.equal(connections(), 0);
  });
});

Deno.test("red team 2: read: true does not reach the project's secrets through /proc or other spellings", async () => {
  const dir = new ToolDir();
  Deno.writeTextFileSync(join(dir.path, "compozy.yaml"), "name: p\n");
  Deno.writeTextFileSync(join(dir.path, ".env"), "SECRET=in-dot-env\n");
  const runner = new ToolRunner({});
  try {
    const tool = dir.tool(
      "proc_spellings",
      `export default async (paths: string[]) => {
         const read: string[] = [];
         for (const p of paths) {
           try { await Deno.readTextFile(p); read.push(p); } catch (e) { if (!(e instanceof Deno.errors.NotCapable)) throw e; }
         }
         return read;
       };`,
    );
    const paths = [
      "/proc/self/cwd/.env",
      "/proc/thread-self/cwd/.env",
      `/proc/self/root${dir.path}/.env`,
      `/proc/${Deno.pid}/environ`,
      `/proc/${Deno.pid}/cwd/.env`,
      `${dir.path}//.env`,
      `${dir.path}/./.env`,
      `${dir.path}/sub/../.env`,
      "/proc/self/cwd/compozy.yaml",
    ];
    const result = await runner.run(call(tool, paths, { permissions: { read: true }, timeoutMs: 30_000 }));
    assert.deepEqual(output(result), []);
  } finally {
    await runner.close();
    dir.cleanup();
  }
});

Deno.test("red team 2: an Atomics.waitAsync of an ended call never logs into the next call", async () => {
  // Not a timer the call's scope cancels: the wait resolves on its own, during the next call.
  const dir = new ToolDir();
  // Cold starts took over 10 s at load 20-30; nothing here is about time.
  const runner = new ToolRunner({ maxWarmPerKey: 1, startTimeoutMs: 60_000 });
  try {
    const tool = dir.tool(
      "wait_async",
      `export default async (secret: string | null) => {
         if (secret !== null) {
           const cell = new Int32Array(new SharedArrayBuffer(4));
           (Atomics as any).waitAsync(cell, 0, 0, 300).value.then(() => console.log("late " + secret));
           return Deno.pid;
         }
         await new Promise((resolve) => setTimeout(resolve, 1_500));
         return Deno.pid;
       };`,
    );
    const earlier = await runner.run(call(tool, "data of the earlier call", { timeoutMs: 30_000 }));
    const later: string[] = [];
    const result = await runner.run(
      call(tool, null, { timeoutMs: 30_000, onLog: (e) => later.push(e.message) }),
    );
    assert.ok(earlier.ok && result.ok, JSON.stringify([earlier, result]));
    // A wait that resolves during the later call has its callback stopped before it runs, and the later
    // call runs again in a fresh process (late_chain_test.ts); one that resolves between the calls runs
    // outside any call. Its line never arrives either way.
    assert.deepEqual(later, []);
  } finally {
    await runner.close();
    dir.cleanup();
  }
});

Deno.test("red team 2: node:repl, whose server evaluates the lines it reads, is refused", async (t) => {
  // Before, a tool read "'E'+'VAL'+(6*7)" into repl.start({ input, output }) and got 'EVAL42' back: strings
  // run as code despite --disallow-code-generation-from-strings, and so a computed import() past the policy.
  const dir = new ToolDir();
  const runner = new ToolRunner({});
  try {
    await t.step("imported: tool_import_refused", async () => {
      const tool = dir.tool(
        "repl_import",
        `import repl from "node:repl";
         import { PassThrough } from "node:stream";
         export default () => new Promise((resolve) => {
           const input = new PassThrough();
           const output = new PassThrough();
           let got = "";
           output.on("data", (d: unknown) => { got += String(d); });
           repl.start({ input, output, prompt: "", terminal: false });
           input.write("'E'+'VAL'+(6*7)\\n");
           setTimeout(() => resolve(got), 500);
         });`,
      );
      const f = failure(await runner.run(call(tool, null, { timeoutMs: 30_000 })));
      assert.equal(f.code, "tool_import_refused");
      assert.match(f.message, /node:repl/);
    });
    await t.step("reached at run time: refused", async () => {
      const tool = dir.tool(
        "repl_builtin",
        `export default () => typeof (globalThis as any).process.getBuiltinModule("node:repl").start;`,
      );
      const f = failure(await runner.run(call(tool, null, { timeoutMs: 30_000 })));
      assert.equal(f.code, "tool_permission_denied");
      assert.match(f.message, /Built-in "node:repl" is refused/);
    });
  } finally {
    await runner.close();
    dir.cleanup();
  }
});

Deno.test("red team 2: work of an ended call cannot post log frames of the next call", async () => {
  // Before, the tool could reach the worker's postMessage: an Atomics.waitAsync of call 1 (no call scope
  // cancels it) posted ["log", id, ...] for every small id during call 2, and the host delivered call 1's
  // data as a log line of call 2.
  const dir = new ToolDir();
  // Cold starts took over 10 s at load 20-30; nothing here is about time.
  const runner = new ToolRunner({ maxWarmPerKey: 1, startTimeoutMs: 60_000 });
  try {
    const tool = dir.tool(
      "post_frames",
      `export default async (secret: string | null) => {
         if (secret !== null) {
           const cell = new Int32Array(new SharedArrayBuffer(4));
           (Atomics as any).waitAsync(cell, 0, 0, 300).value.then(() => {
             for (let id = 0; id < 100; id++) (globalThis as any).postMessage(["log", id, "info", "late " + secret]);
           });
           return Deno.pid;
         }
         await new Promise((resolve) => setTimeout(resolve, 1_500));
         return [Deno.pid, typeof (globalThis as any).postMessage];
       };`,
    );
    const earlier = await runner.run(call(tool, "data of the earlier call", { timeoutMs: 30_000 }));
    const later: string[] = [];
    const result = await runner.run(
      call(tool, null, { timeoutMs: 30_000, onLog: (e) => later.push(e.message) }),
    );
    // A callback that would run during the later call is stopped before it runs, and the later call runs
    // again in a fresh process (late_chain_test.ts); either worker has no postMessage.
    assert.ok(earlier.ok, JSON.stringify(earlier));
    assert.equal((output(result) as [number, string])[1], "undefined");
    assert.deepEqual(later, []);
  } finally {
    await runner.close();
    dir.cleanup();
  }
});

Deno.test("red team 2: a chain of Atomics.waitAsync left by an ended call retires its worker", async () => {
  // Before, each wait's callback (20 ms of work, then another wait of 1 ms) kept a CPU busy in the idle
  // pooled process for ever: no call scope cancels a wait, and the worker still passed its idle check.
  const dir = new ToolDir();
  const runner = new ToolRunner({ maxWarmPerKey: 1 });
  try {
    const tool = dir.tool(
      "wait_chain",
      `export default () => {
         const cell = new Int32Array(new SharedArrayBuffer(4));
         const again = () => {
           const start = performance.now();
           while (performance.now() - start < 20) {}
           (Atomics as any).waitAsync(cell, 0, 0, 1).value.then(again);
         };
         again();
         return Deno.pid;
       };`,
    );
    const pid = output(await runner.run(call(tool, null, { timeoutMs: 30_000 }))) as number;
    assert.ok(await eventually(() => !processAlive(pid), 20_000), `process ${pid} still runs the chain`);
  } finally {
    await runner.close();
    dir.cleanup();
  }
});

Deno.test("red team 2: an async chain left by an ended call is retired for the CPU it burns while idle", async (t) => {
  // Before, each of these kept an idle pooled process busy (0.3–1 s of CPU per 3 s at load ~25) for ever:
  // none of them is an API the call scope refuses to code of an ended call.
  const dir = new ToolDir();
  const runner = new ToolRunner({ maxWarmPerKey: 1 });
  const busy = `const start = performance.now(); while (performance.now() - start < 20) {}`;
  try {
    for (
      const [name, chain] of [
        [
          "message_channel",
          `const { port1, port2 } = new MessageChannel();
           port2.onmessage = () => { ${busy} port1.postMessage(0); };
           port1.postMessage(0);`,
        ],
        [
          "subtle_digest",
          `const again = () => { ${busy} crypto.subtle.digest("SHA-256", new Uint8Array(1)).then(again); };
           again();`,
        ],
        [
          "response_body",
          `const again = () => { ${busy} new Response("x").text().then(again); };
           again();`,
        ],
      ]
    ) {
      await t.step(name, async () => {
        const tool = dir.tool(`chain_${name}`, `export default () => { ${chain} return Deno.pid; };`);
        const pid = output(await runner.run(call(tool, null, { timeoutMs: 30_000 }))) as number;
        assert.ok(await eventually(() => !processAlive(pid), 20_000), `process ${pid} still runs the chain`);
      });
    }
    await t.step("an idle process that left nothing behind stays warm", async () => {
      const tool = dir.tool("quiet", `export default () => Deno.pid;`);
      const first = output(await runner.run(call(tool, null, { timeoutMs: 30_000 })));
      await new Promise((resolve) => setTimeout(resolve, 5_000));
      assert.equal(output(await runner.run(call(tool, null, { timeoutMs: 30_000 }))), first);
    });
  } finally {
    await runner.close();
    dir.cleanup();
  }
});
