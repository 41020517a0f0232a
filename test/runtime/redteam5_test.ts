/**
 * Red team 5: attacks on the sandbox from inside a tool, beyond the earlier suites (docs/runtime-sandbox.md,
 * "Red team 5"). Real sandbox processes; each test failed on the code before its fix.
 */
import assert from "node:assert/strict";
import { writeSandboxModules } from "../../cli/sandbox_cache.ts";
import { configureSandboxModules, sandboxModules } from "../../pkg/runtime/sandbox_modules.ts";
import { ToolRunner } from "../../pkg/runtime/tool_runner.ts";
import { BUNDLE_PATH } from "../../scripts/sandbox_bundle.ts";
import { call, ToolDir } from "./_helpers.ts";

Deno.test("red team 5: no node: API reads the call channel (fd 0), so later calls stay in their warm process", async () => {
  const dir = new ToolDir();
  const runner = new ToolRunner({ maxWarmPerKey: 1, startTimeoutMs: 60_000 });
  try {
    // The first call tries every way Node's layer reaches fd 0 by number and leaves each reader pending.
    // Before: the readers took later calls' frames, and each such call ran again in a fresh process.
    const tool = dir.tool(
      "fd0",
      `import fs from "node:fs";
       import net from "node:net";
       import tty from "node:tty";
       const seen: Record<string, string> = {};
       const got = (how: string) => (data: unknown) => { seen[how] = "read " + String(data).length + " bytes"; };
       const refused = (how: string) => (e: unknown) => { seen[how] ??= "refused: " + (e as Error).message; };
       function arm() {
         fs.read(0, Buffer.alloc(65536), 0, 65536, null, (e, n) => e ? refused("fs.read")(e) : (got("fs.read")(n), arm()));
         fs.readFile(0, (e, b) => e ? refused("fs.readFile")(e) : got("fs.readFile")(b));
         try { fs.readSync(0, Buffer.alloc(1)); seen["fs.readSync"] = "read"; } catch (e) { refused("fs.readSync")(e); }
         const stream = fs.createReadStream("", { fd: 0 });
         stream.on("data", got("fs.createReadStream")).on("error", refused("fs.createReadStream"));
         try {
           new net.Socket({ fd: 0 }).on("data", got("net.Socket")).on("error", refused("net.Socket"));
         } catch (e) { refused("net.Socket")(e); }
         try {
           new tty.ReadStream(0).on("data", got("tty.ReadStream")).on("error", refused("tty.ReadStream"));
         } catch (e) { refused("tty.ReadStream")(e); }
       }
       let armed = false;
       export default async (input: { n: number }) => {
         if (!armed) { armed = true; arm(); await new Promise((r) => setTimeout(r, 300)); }
         return { n: input.n, pid: Deno.pid, seen };
       };`,
    );
    const pids = new Set<number>();
    let seen: Record<string, string> = {};
    for (let n = 0; n < 5; n++) {
      const result = await runner.run(call(tool, { n }, { timeoutMs: 30_000 }));
      assert.ok(result.ok, `call ${n}: ${JSON.stringify(result).slice(0, 500)}`);
      const out = result.output as { n: number; pid: number; seen: Record<string, string> };
      assert.equal(out.n, n);
      pids.add(out.pid);
      seen = out.seen;
    }
    const ways = [
      "fs.read",
      "fs.readFile",
      "fs.readSync",
      "fs.createReadStream",
      "net.Socket",
      "tty.ReadStream",
    ];
    for (const way of ways) {
      assert.match(seen[way] ?? "no answer", /^refused/, `${way}: ${JSON.stringify(seen)}`);
    }
    assert.equal(pids.size, 1, `calls ran again in fresh processes: ${[...pids]}`);
  } finally {
    await runner.close();
    dir.cleanup();
  }
});

Deno.test("outside review B12: an output JSON cannot represent fails tool_output_invalid, naming the first bad value's path", async () => {
  const dir = new ToolDir();
  const runner = new ToolRunner({ maxWarmPerKey: 1 });
  try {
    const tool = dir.tool(
      "weird",
      `const outputs: Record<string, () => unknown> = {
         nan: () => ({ stats: { n: NaN } }),
         infinity: () => ({ list: [1, -Infinity] }),
         map: () => ({ "a b": new Map([[1, 2]]) }),
         set: () => [{ tags: new Set(["x"]) }],
         hole: () => ({ items: [1, undefined, 3] }),
         fn: () => ({ f: () => 1 }),
         symbol: () => ({ s: Symbol("x") }),
         bigint: () => ({ big: 10n }),
         bytes: () => ({ raw: new Uint8Array(2) }),
         error: () => ({ e: new Error("lost") }),
         root: () => NaN,
         fine: () => ({ when: new Date(0), gone: undefined, list: [1, "a", null, { ok: true }] }),
       };
       export default (input: { kind: string }) => outputs[input.kind]();`,
    );
    const expected: Record<string, string> = {
      nan: "stats.n is NaN",
      infinity: "list[1] is -Infinity",
      map: `["a b"] is a Map`,
      set: "[0].tags is a Set",
      hole: "items[1] is undefined",
      fn: "f is a function",
      symbol: "s is a symbol",
      bigint: "big is a BigInt",
      bytes: "raw is a typed array or DataView",
      error: "e is an Error",
      root: "the output is NaN",
    };
    for (const [kind, message] of Object.entries(expected)) {
      const result = await runner.run(call(tool, { kind }, { timeoutMs: 30_000 }));
      assert.ok(!result.ok, `${kind}: succeeded with ${JSON.stringify(result)}`);
      assert.equal(result.failure.code, "tool_output_invalid", `${kind}: ${JSON.stringify(result.failure)}`);
      assert.ok(result.failure.message.includes(message), `${kind}: ${result.failure.message}`);
    }
    const fine = await runner.run(call(tool, { kind: "fine" }, { timeoutMs: 30_000 }));
    assert.ok(fine.ok, JSON.stringify(fine));
    assert.deepEqual(fine.output, { when: "1970-01-01T00:00:00.000Z", list: [1, "a", null, { ok: true }] });
  } finally {
    await runner.close();
    dir.cleanup();
  }
});

Deno.test("red team 5: raw writes to fd 2 during a call are bounded like fd 1's, not read and scanned forever", async () => {
  const dir = new ToolDir();
  const runner = new ToolRunner({ maxWarmPerKey: 1 });
  try {
    // No grants: 32 MiB to stderr. Before: the runtime read and scanned every byte for out-of-memory reports
    // and the call succeeded (174 MB in 4 s here; a call's limit is minutes).
    const tool = dir.tool(
      "stderr_flood",
      `import fs from "node:fs";
       export default () => {
         const chunk = new TextEncoder().encode("x".repeat(1024 * 1024));
         let n = 0;
         for (let i = 0; i < 32; i++) n += fs.writeSync(2, chunk);
         return n;
       };`,
    );
    const result = await runner.run(call(tool, {}, { timeoutMs: 60_000 }));
    assert.ok(!result.ok, `the flood succeeded: ${JSON.stringify(result).slice(0, 300)}`);
    assert.equal(result.failure.code, "tool_crashed");
    assert.match(result.failure.message, /stderr outside frames/);
    const quiet = dir.tool("quiet", `export default () => "fine";`);
    const next = await runner.run(call(quiet, {}, { timeoutMs: 30_000 }));
    assert.ok(next.ok && next.output === "fine", JSON.stringify(next));
  } finally {
    await runner.close();
    dir.cleanup();
  }
});

Deno.test("red team 5: a write grant cannot name the sandbox host thread's modules, in a checkout or a compiled binary's cache", async () => {
  const dir = new ToolDir();
  const runner = new ToolRunner({ maxWarmPerKey: 1 });
  const checkout = sandboxModules();
  const cache = await Deno.makeTempDir({ prefix: "compozy-rt5-cache-" });
  try {
    const tool = dir.tool("writer", `export default () => "ran";`);
    const refusedFor = async (file: string) => {
      const result = await runner.run(call(tool, {}, { timeoutMs: 30_000, permissions: { write: [file] } }));
      return result.ok ? "the grant was accepted" : `${result.failure.code}: ${result.failure.message}`;
    };
    // Before: each was granted. A tool rewriting the host's entry ran its code as the host thread of every
    // later sandbox, of every tool, with that tool's grants and env values (the worker's files were guarded).
    // The list is the host entry's whole module graph.
    const info = await new Deno.Command(Deno.execPath(), {
      args: ["info", "--json", "--no-config", checkout.hostPath],
      stdout: "piped",
    }).output();
    const graph = (JSON.parse(new TextDecoder().decode(info.stdout)) as { modules: { local?: string }[] })
      .modules.map((m) => m.local).filter((f): f is string => f !== undefined).sort();
    assert.deepEqual([...checkout.hostFiles].sort(), graph);
    for (const file of graph) {
      assert.match(await refusedFor(file), /^tool_permission_denied: .*a module the sandbox loads/, file);
    }
    const compiled = await writeSandboxModules(JSON.parse(await Deno.readTextFile(BUNDLE_PATH)), cache);
    configureSandboxModules(compiled);
    assert.match(
      await refusedFor(compiled.hostPath),
      /^tool_permission_denied: .*a module the sandbox loads/,
    );
  } finally {
    configureSandboxModules(checkout);
    await runner.close();
    dir.cleanup();
    await Deno.remove(cache, { recursive: true });
  }
});

Deno.test("red team 5: a schema's backtracking pattern does not hold the runtime's thread (linear-time matching)", async () => {
  const dir = new ToolDir();
  try {
    const tool = dir.tool("almost", `export default (n: number) => "a".repeat(n) + "!";`);
    // In a child process, since a pattern that backtracks holds the thread it runs on: the test's bound
    // could not fire in this one. Before: JavaScript's engine took 30 s for 28 characters, doubling with each.
    const script = `
      import { ToolRunner } from ${
      JSON.stringify(new URL("../../pkg/runtime/tool_runner.ts", import.meta.url).href)
    };
      const runner = new ToolRunner();
      const context = { workflowId: "wf", workflowExecId: "e", taskId: "t", taskExecId: "te", attempt: 1 };
      const result = await runner.run({
        toolId: "almost", executePath: ${JSON.stringify(tool)}, input: 60, timeoutMs: 60000, context,
        outputSchema: { type: "string", pattern: "^(a+)+$" },
      });
      await runner.close();
      console.log(JSON.stringify(result.ok ? result : { code: result.failure.code, message: result.failure.message }));`;
    const child = new Deno.Command(Deno.execPath(), {
      args: ["eval", "--config", new URL("../../deno.json", import.meta.url).pathname, script],
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const bound = setTimeout(() => child.kill("SIGKILL"), 90_000);
    const out = await child.output();
    clearTimeout(bound);
    assert.ok(
      out.success,
      `the check did not end within 90 s: ${new TextDecoder().decode(out.stderr).slice(-500)}`,
    );
    const result = JSON.parse(new TextDecoder().decode(out.stdout).trim().split("\n").at(-1)!);
    assert.equal(result.code, "tool_output_invalid", JSON.stringify(result));
    assert.match(result.message, /must match pattern/);
  } finally {
    dir.cleanup();
  }
});
