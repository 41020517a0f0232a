/**
 * Escape attempts by tools, each with real sandbox processes. Every attempt must fail its own call with a
 * named failure, and the runner must go on serving other calls. Most tools here have no permissions.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { type ToolResult, ToolRunner } from "../../pkg/runtime/tool_runner.ts";
import { call, ToolDir } from "./_helpers.ts";

function failureCode(result: ToolResult): string {
  assert.ok(!result.ok, `expected a failure, got ${JSON.stringify(result)}`);
  return result.failure.code;
}

Deno.test("sandbox escape attempts fail their call and leave the runner serving", async (t) => {
  const dir = new ToolDir();
  const outside = Deno.makeTempDirSync({ prefix: "compozy-outside-" });
  const runner = new ToolRunner({ heapLimitMb: 64 });
  const bystander = dir.tool(
    "bystander",
    `export default async (ms: number) => { await new Promise((r) => setTimeout(r, ms)); return "fine"; };`,
  );
  let requests = 0;
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, () => {
    requests++;
    return new Response("leaked");
  });
  /** Runs `source` as a tool with no permissions, while another call runs beside it. */
  const attempt = async (name: string, source: string, input: unknown = null, timeoutMs = 5_000) => {
    const tool = dir.tool(name, source);
    const [result, other] = await Promise.all([
      runner.run(call(tool, input, { timeoutMs })),
      runner.run(call(bystander, 50)),
    ]);
    assert.deepEqual(other.ok && other.output, "fine", `a call beside ${name} was harmed`);
    return result;
  };

  try {
    await t.step("fetch is denied", async () => {
      const url = `http://127.0.0.1:${server.addr.port}/`;
      const result = await attempt(
        "fetch",
        `export default (url: string) => fetch(url).then((r) => r.text());`,
        url,
      );
      assert.equal(failureCode(result), "tool_permission_denied");
      assert.match(!result.ok ? result.failure.message : "", /Requires net access/);
      assert.equal(requests, 0);
    });

    await t.step("reading /etc/passwd is denied", async () => {
      const result = await attempt("read_passwd", `export default () => Deno.readTextFile("/etc/passwd");`);
      assert.equal(failureCode(result), "tool_permission_denied");
    });

    await t.step("a tool cannot read even its own folder without a read grant", async () => {
      const result = await attempt(
        "read_self",
        `export default () => Deno.readTextFile(import.meta.filename!);`,
      );
      assert.equal(failureCode(result), "tool_permission_denied");
    });

    await t.step("Deno.env.get of an unlisted name is a permission error, not undefined", async () => {
      const result = await attempt(
        "env_home",
        `export default () => ({ home: Deno.env.get("HOME") ?? "<unset>" });`,
      );
      assert.equal(failureCode(result), "tool_permission_denied");
      const proc = await attempt(
        "env_process",
        `export default () => (globalThis as any).process.env.PATH ?? "<unset>";`,
      );
      assert.equal(failureCode(proc), "tool_permission_denied");
    });

    await t.step("Deno.Command is denied", async () => {
      const result = await attempt(
        "command",
        `export default () => new Deno.Command("/bin/sh", { args: ["-c", "id"] }).output();`,
      );
      assert.equal(failureCode(result), "tool_permission_denied");
    });

    await t.step("Deno.dlopen is denied", async () => {
      const result = await attempt("dlopen", `export default () => Deno.dlopen("libc.so.6", {});`);
      assert.equal(failureCode(result), "tool_permission_denied");
    });

    await t.step("node:child_process is denied", async () => {
      const result = await attempt(
        "child_process",
        `import { execSync } from "node:child_process"; export default () => String(execSync("id"));`,
      );
      assert.equal(failureCode(result), "tool_permission_denied");
    });

    await t.step("node:fs reads and writes are denied", async () => {
      const target = join(outside, "node_fs.txt");
      const read = await attempt(
        "node_fs_read",
        `import { readFileSync } from "node:fs"; export default () => readFileSync("/etc/passwd", "utf8");`,
      );
      assert.equal(failureCode(read), "tool_permission_denied");
      const write = await attempt(
        "node_fs_write",
        `import { writeFileSync } from "node:fs"; export default (p: string) => writeFileSync(p, "x");`,
        target,
      );
      assert.equal(failureCode(write), "tool_permission_denied");
      assert.throws(() => Deno.statSync(target));
    });

    await t.step("writing any file is denied", async () => {
      const result = await attempt(
        "write_file",
        `export default async (dir: string) => { await Deno.writeTextFile(dir + "/w.txt", "x"); };`,
        outside,
      );
      assert.equal(failureCode(result), "tool_permission_denied");
      const tmp = await attempt("make_temp", `export default () => Deno.makeTempFile();`);
      assert.equal(failureCode(tmp), "tool_permission_denied");
      assert.deepEqual([...Deno.readDirSync(outside)], []);
    });

    await t.step(
      "import of https:, data:, npm: and jsr: modules is refused before any code runs",
      async () => {
        const https = await attempt(
          "import_https",
          `export default () => import("https://deno.land/std/version.ts");`,
        );
        assert.equal(failureCode(https), "tool_import_refused");
        const data = await attempt(
          "import_data",
          `export default () => import("data:text/javascript,export default 1");`,
        );
        assert.equal(failureCode(data), "tool_import_refused");
        const staticData = await attempt(
          "import_data_static",
          `import x from "data:text/javascript,export default 1";\nexport default () => x;`,
        );
        assert.equal(failureCode(staticData), "tool_import_refused");
        const npm = await attempt(
          "import_npm",
          `import leftPad from "npm:left-pad"; export default () => leftPad("a", 3);`,
        );
        assert.equal(failureCode(npm), "tool_import_refused");
        const jsr = await attempt(
          "import_jsr",
          `import * as p from "jsr:@std/path"; export default () => p.sep;`,
        );
        assert.equal(failureCode(jsr), "tool_import_refused");
      },
    );

    await t.step("a computed import() specifier is refused, and eval cannot build one", async () => {
      const computed = await attempt(
        "import_computed",
        `export default () => import(["data:text/javascript", "export default 1"].join(","));`,
      );
      assert.equal(failureCode(computed), "tool_import_refused");
      const viaEval = await attempt("import_eval", `export default () => eval("1 + 1");`);
      assert.equal(failureCode(viaEval), "tool_threw");
      assert.match(
        !viaEval.ok ? viaEval.failure.message : "",
        /EvalError: Code generation from strings disallowed/,
      );
    });

    await t.step("built-ins that run strings as code are refused, at import and at run time", async () => {
      const vm = await attempt(
        "import_vm",
        `import vm from "node:vm"; export default () => vm.runInThisContext("1");`,
      );
      assert.equal(failureCode(vm), "tool_import_refused");
      const threads = await attempt(
        "builtin_threads",
        `export default () => (globalThis as any).process.getBuiltinModule("node:worker_threads");`,
      );
      assert.equal(failureCode(threads), "tool_permission_denied");
      assert.match(!threads.ok ? threads.failure.message : "", /refused in a tool sandbox/);
      const imported = await attempt(
        "builtin_imported_process",
        `import process from "node:process"; export default () => process.getBuiltinModule("vm");`,
      );
      assert.equal(failureCode(imported), "tool_permission_denied");
      assert.match(!imported.ok ? imported.failure.message : "", /refused in a tool sandbox/);
      const worker = await attempt(
        "worker_global",
        `export default () => typeof (globalThis as any).Worker;`,
      );
      assert.deepEqual(worker.ok && worker.output, "undefined");
    });

    await t.step(
      "importing a file outside the tool's folder is refused, also through a symlink",
      async () => {
        Deno.writeTextFileSync(join(outside, "secret.ts"), `export const secret = "s3cr3t";`);
        const relative = await attempt(
          "import_outside",
          `import { secret } from "${join(outside, "secret.ts")}"; export default () => secret;`,
        );
        assert.equal(failureCode(relative), "tool_import_refused");
        Deno.symlinkSync(join(outside, "secret.ts"), join(dir.path, "linked.ts"));
        const linked = await attempt(
          "import_link",
          `import { secret } from "./linked.ts"; export default () => secret;`,
        );
        assert.equal(failureCode(linked), "tool_import_refused");
      },
    );

    await t.step("an endless loop is killed at the time limit", async () => {
      const result = await attempt("endless", `export default () => { for (;;) {} };`, null, 500);
      assert.equal(failureCode(result), "tool_timeout");
    });

    await t.step("a 2 GiB allocation is killed by the memory limit", async () => {
      const buffer = await attempt(
        "alloc_buffer",
        `export default () => new Uint8Array(2 * 1024 ** 3).fill(1).length;`,
        null,
        20_000,
      );
      assert.equal(failureCode(buffer), "tool_memory_exceeded");
      assert.match(
        !buffer.ok ? buffer.failure.message : "",
        /resident memory/,
        "ArrayBuffers are outside the V8 heap",
      );
      const heap = await attempt(
        "alloc_heap",
        `export default () => { const keep: number[][] = []; for (let i = 0; i < 2048; i++) keep.push(new Array(131072).fill(i + 0.5)); return keep.length; };`,
        null,
        20_000,
      );
      assert.equal(failureCode(heap), "tool_memory_exceeded");
      assert.match(!heap.ok ? heap.failure.message : "", /heap limit 64 MB|resident memory/);
    });

    await t.step("a tool granted write to one folder cannot write outside it", async () => {
      const allowed = Deno.makeTempDirSync({ prefix: "compozy-allowed-" });
      try {
        const tool = dir.tool(
          "writer",
          `export default async (path: string) => { await Deno.writeTextFile(path, "x"); return "written"; };`,
        );
        const permissions = { write: [allowed] };
        const inside = await runner.run(call(tool, join(allowed, "ok.txt"), { permissions }));
        assert.deepEqual(inside.ok && inside.output, "written");
        const escape = await runner.run(call(tool, join(outside, "no.txt"), { permissions }));
        assert.equal(failureCode(escape), "tool_permission_denied");
        const traversal = await runner.run(call(tool, join(allowed, "..", "traversal.txt"), { permissions }));
        assert.equal(failureCode(traversal), "tool_permission_denied");
        assert.throws(() => Deno.statSync(join(outside, "no.txt")));
      } finally {
        Deno.removeSync(allowed, { recursive: true });
      }
    });

    await t.step("a tool reads only the env names it lists, and nothing of the runtime's env", async () => {
      const tool = dir.tool(
        "env_reader",
        `export default (name: string) => Deno.env.get(name) ?? "<unset>";`,
      );
      const permissions = { env: ["WEATHER_KEY", "LISTED_BUT_UNSET"] };
      const env = { WEATHER_KEY: "k-123", OTHER_SECRET: "nope" };
      const listed = await runner.run(call(tool, "WEATHER_KEY", { permissions, env }));
      assert.deepEqual(listed.ok && listed.output, "k-123");
      const unset = await runner.run(call(tool, "LISTED_BUT_UNSET", { permissions, env }));
      assert.deepEqual(unset.ok && unset.output, "<unset>");
      const other = await runner.run(call(tool, "OTHER_SECRET", { permissions, env }));
      assert.equal(failureCode(other), "tool_permission_denied");
      const all = dir.tool("env_all", `export default () => Deno.env.toObject();`);
      const everything = await runner.run(call(all, null, { permissions: { env: true }, env }));
      assert.deepEqual(
        everything.ok && everything.output,
        // The runtime's DENO_DISABLE_NODE_SHIM is set for Deno's start, and DENO_* is denied to the tool.
        env,
        "the sandbox inherits nothing from the runtime",
      );
    });

    await t.step("a tool cannot read the call channel from stdin", async () => {
      const result = await attempt(
        "stdin",
        `export default async () => { const buf = new Uint8Array(64); return await Deno.stdin.read(buf); };`,
      );
      assert.ok(result.ok);
      assert.equal(result.output, null);
    });
  } finally {
    await runner.close();
    await server.shutdown();
    dir.cleanup();
    Deno.removeSync(outside, { recursive: true });
  }
});
