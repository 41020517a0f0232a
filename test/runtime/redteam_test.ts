/**
 * A held-out attack suite (issue 10): attacks by a malicious tool author beyond the earlier suites, each with
 * real sandbox processes. Every attack must fail its own call with a named failure code, or have no effect.
 */
import assert from "node:assert/strict";
import { type ToolResult, ToolRunner } from "../../pkg/runtime/tool_runner.ts";
import { call, ToolDir, withDeniedBusPort } from "./_helpers.ts";

function failure(result: ToolResult): { code: string; message: string } {
  assert.ok(!result.ok, `expected a failure, got ${JSON.stringify(result)}`);
  return result.failure;
}

Deno.test("red team: a tool cannot reach what it was not granted", async (t) => {
  const dir = new ToolDir();
  const runner = new ToolRunner({});
  const run = (name: string, source: string, overrides: Parameters<typeof call>[2] = {}) =>
    runner.run(call(dir.tool(name, source), null, { timeoutMs: 8_000, ...overrides }));
  try {
    await t.step("code from strings through every Function constructor is refused", async () => {
      for (
        const [name, expr] of [
          ["async_fn", `(async function () {}).constructor("return 1")()`],
          ["generator_fn", `(function* () {}).constructor("yield 1")().next()`],
          ["async_generator_fn", `(async function* () {}).constructor("yield 1")().next()`],
          ["reflect_construct", `Reflect.construct(Function, ["return 1"])()`],
          ["bound_function", `Function.prototype.constructor.bind(null, "return 1")()()`],
        ]
      ) {
        const f = failure(await run(name, `export default () => ${expr};`));
        assert.equal(f.code, "tool_threw", name);
        assert.match(f.message, /EvalError/, name);
      }
    });

    await t.step("node:v8 cannot turn code generation back on: the module is refused", async () => {
      const f = failure(
        await run(
          "v8_flags",
          `import v8 from "node:v8";
           export default () => { v8.setFlagsFromString("--allow-code-generation-from-strings"); return eval("1+1"); };`,
        ),
      );
      assert.equal(f.code, "tool_import_refused");
      assert.match(f.message, /node:v8/);
    });

    await t.step("node:inspector cannot evaluate strings", async () => {
      const f = failure(
        await run(
          "inspector",
          `import inspector from "node:inspector";
           export default () => new Promise((resolve, reject) => {
             const s = new inspector.Session(); s.connect();
             s.post("Runtime.evaluate", { expression: "1+1" }, (e: unknown, v: unknown) => e ? reject(e) : resolve(v));
           });`,
        ),
      );
      assert.equal(f.code, "tool_permission_denied");
    });

    await t.step("ShadowRealm and localStorage are absent", async () => {
      const result = await run(
        "realms",
        `export default () => [typeof (globalThis as any).ShadowRealm, typeof (globalThis as any).localStorage];`,
      );
      assert.deepEqual(result.ok && result.output, ["undefined", "undefined"]);
    });

    await t.step("Deno.env.toObject with a partial env grant is denied", async () => {
      const f = failure(
        await run("env_object", `export default () => Deno.env.toObject();`, {
          env: { GRANTED: "value-1" },
          permissions: { env: ["GRANTED"] },
        }),
      );
      assert.equal(f.code, "tool_permission_denied");
    });

    await t.step("signalling the runtime is denied", async () => {
      for (
        const [name, body] of [
          ["deno_kill", `Deno.kill(Deno.ppid, "SIGTERM")`],
          ["process_kill", `(globalThis as any).process.kill((globalThis as any).process.ppid, "SIGTERM")`],
        ]
      ) {
        const f = failure(await run(name, `export default () => { ${body}; return "sent"; };`));
        assert.equal(f.code, "tool_permission_denied", name);
      }
    });

    await t.step("/dev/fd, /proc/self and import.meta.resolve reach no file", async () => {
      for (
        const [name, path] of [
          ["dev_fd", `"/dev/fd/0"`],
          ["proc_environ", `"/proc/self/environ"`],
          ["proc_cmdline", `"/proc/self/cmdline"`],
          ["resolved_env", `new URL(import.meta.resolve("./.env"))`],
        ]
      ) {
        const f = failure(await run(name, `export default () => Deno.readTextFile(${path});`));
        assert.equal(f.code, "tool_permission_denied", name);
      }
    });

    await t.step("process.binding is refused and dlopen gives nothing", async () => {
      const binding = failure(
        await run(
          "binding",
          `export default () => Object.keys((globalThis as any).process.binding("fs")).length;`,
        ),
      );
      assert.match(binding.message, /process\.binding\("fs"\) is refused/);
      const dlopen = failure(
        await run(
          "process_dlopen",
          `export default () => (globalThis as any).process.dlopen({ exports: {} }, "/lib/x86_64-linux-gnu/libc.so.6");`,
        ),
      );
      assert.equal(dlopen.code, "tool_permission_denied");
    });
  } finally {
    await runner.close();
    dir.cleanup();
  }
});

Deno.test("red team: a NATS port bound to every interface is denied under every loopback spelling", async () => {
  // nats-server's default bind is 0.0.0.0: the whole of 127.0.0.0/8 reaches it, not only 127.0.0.1.
  await withDeniedBusPort(async ({ port, connections, dir, runner }) => {
    const tool = dir.tool(
      "raw_nats",
      `export default async (host: string) => {
         const conn = await Deno.connect({ hostname: host, port: ${port} });
         await conn.write(new TextEncoder().encode("CONNECT {}\\r\\nSUB > 1\\r\\n"));
         conn.close();
         return "connected";
       };`,
    );
    for (
      const host of [
        "127.0.0.2",
        "127.1.2.3",
        "::ffff:127.0.0.2",
        "::ffff:7f00:2",
        "2130706434",
        "0x7f000002",
      ]
    ) {
      const result = await runner.run(call(tool, host, { permissions: { net: true }, timeoutMs: 8_000 }));
      assert.equal(failure(result).code, "tool_permission_denied", host);
    }
    assert.equal(connections(), 0);
  });
});

Deno.test("red team: what one tool leaves behind is not kept on disk for others", async () => {
  const dir = new ToolDir();
  const runner = new ToolRunner({});
  try {
    // The Cache API writes to Deno's own store without any write grant, under a key shared by every sandbox
    // (the main module is worker_host.ts): a channel between tools and a way to poison another's cache.
    const writer = dir.tool(
      "cache_writer",
      `export default async () => {
         const c = await caches.open("shared");
         await c.put("https://api.example/rates", new Response("poisoned"));
         return "written";
       };`,
    );
    const reader = dir.tool(
      "cache_reader",
      `export default async () => {
         const hit = await (await caches.open("shared")).match("https://api.example/rates");
         return hit ? await hit.text() : null;
       };`,
    );
    const wrote = await runner.run(call(writer, null));
    assert.ok(!wrote.ok, `the cache write succeeded: ${JSON.stringify(wrote)}`);
    const read = await runner.run(call(reader, null));
    assert.ok(!read.ok || read.output === null, `another tool read ${JSON.stringify(read)}`);
  } finally {
    await runner.close();
    dir.cleanup();
  }
});

Deno.test("red team: a thrown value that traps every inspection fails tool_threw, not the time limit", async () => {
  const dir = new ToolDir();
  const runner = new ToolRunner({});
  try {
    for (
      const [name, thrown] of [
        [
          "proxy",
          `new Proxy({}, { getPrototypeOf() { throw 1; }, get() { throw 2; }, ownKeys() { throw 3; } })`,
        ],
        ["cause_getter", `Object.defineProperty(new Error("x"), "cause", { get() { throw 5; } })`],
        ["message_getter", `Object.defineProperty(new Error("x"), "message", { get() { throw 6; } })`],
      ]
    ) {
      const tool = dir.tool(`throw_${name}`, `export default () => { throw ${thrown}; };`);
      const result = await runner.run(call(tool, null, { timeoutMs: 30_000 }));
      assert.equal(failure(result).code, "tool_threw", name);
    }
  } finally {
    await runner.close();
    dir.cleanup();
  }
});
