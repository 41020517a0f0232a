/**
 * Node hands out objects of classes no module exports (`node:fs/promises`' `FileHandle`, `node:crypto`'s
 * `SecretKeyObject`, a `node:perf_hooks` histogram), and the put-back of Node's objects (node_guard.ts) knew only the classes the modules
 * export: a call that replaced a method on such a prototype had it run in every later call of the warm
 * process, maybe another execution's, where it saw that call's data (break attempt brk41). Now those
 * prototypes are recorded too and put back after each call. Real sandbox processes; the calls run in the
 * same process (asserted by pid).
 */
import assert from "node:assert/strict";
import { ToolRunner } from "../../pkg/runtime/tool_runner.ts";
import { call, CONTEXT, ToolDir } from "./_helpers.ts";

/**
 * Step 1 (execution A) wraps `method` on the prototype of what `make` returns, keeping what it returns;
 * step 2 (execution B) calls `use` with its secret; step 3 (execution A again) reads what was kept.
 */
function tool(make: string, method: string, use: string, kept: string): string {
  return `import fs from "node:fs";
  import crypto from "node:crypto";
  import perf from "node:perf_hooks";
  export default async (input: { step: number; secret: string; dir: string }) => {
    const file = input.dir + "/b.txt";
    const made: any = await (${make})();
    let holder = Object.getPrototypeOf(made);
    while (holder !== null && !Object.hasOwn(holder, ${
    JSON.stringify(method)
  })) holder = Object.getPrototypeOf(holder);
    if (typeof made.close === "function") await made.close();
    if (input.step === 1) {
      const original = holder[${JSON.stringify(method)}];
      const seen: string[] = [];
      const spy = function (this: unknown, ...args: unknown[]) {
        const result = Reflect.apply(original, this, args);
        Promise.resolve(result).then((value) => seen.push(${kept}));
        return result;
      };
      (spy as any).seen = seen;
      holder[${JSON.stringify(method)}] = spy;
      return { pid: Deno.pid, out: "planted" };
    }
    if (input.step === 2) {
      const secret = input.secret;
      ${use}
      return { pid: Deno.pid, out: "used" };
    }
    return { pid: Deno.pid, out: String(holder[${JSON.stringify(method)}].seen ?? "nothing") };
  };`;
}

Deno.test("a method a call set on a prototype Node does not export does not reach the next call", async (t) => {
  const dir = new ToolDir();
  const data = Deno.makeTempDirSync();
  const runner = new ToolRunner({ maxWarmPerKey: 1, startTimeoutMs: 60_000 });
  const run = async (path: string, step: number) => {
    const result = await runner.run(
      call(path, { step, secret: step === 2 ? "B's secret" : "A's secret", dir: data }, {
        timeoutMs: 60_000,
        permissions: { read: [data], write: [data] },
        context: { ...CONTEXT, workflowExecId: step === 2 ? "exec-B" : "exec-A" },
      }),
    );
    assert.ok(result.ok, JSON.stringify(result));
    return result.output as { pid: number; out: string };
  };
  const cases: Record<string, [string, string, string, string]> = {
    "FileHandle.prototype.readFile (node:fs/promises)": [
      `async () => { fs.writeFileSync(file, "x"); return await fs.promises.open(file); }`,
      "readFile",
      // B writes its secret to a file of its own, reads it back through a handle and deletes it.
      `fs.writeFileSync(file, secret);
      const handle = await fs.promises.open(file);
      await handle.readFile("utf8");
      await handle.close();
      fs.unlinkSync(file);`,
      "String(value)",
    ],
    "SecretKeyObject.prototype.export (node:crypto)": [
      `() => crypto.createSecretKey(new Uint8Array(16))`,
      "export",
      `crypto.createSecretKey(new TextEncoder().encode(secret)).export();`,
      "new TextDecoder().decode(value as Uint8Array)",
    ],
    "a histogram's record (node:perf_hooks)": [
      `() => perf.createHistogram()`,
      "record",
      `perf.createHistogram().record(secret.length);`,
      "String(args[0])",
    ],
  };
  try {
    for (const [name, [make, method, use, kept]] of Object.entries(cases)) {
      await t.step(name, async () => {
        const path = dir.tool(name.replace(/\W+/g, "_"), tool(make, method, use, kept));
        const planted = await run(path, 1);
        const used = await run(path, 2);
        const read = await run(path, 3);
        assert.equal(used.pid, planted.pid, "B did not run in A's process: the test proves nothing");
        assert.equal(read.pid, planted.pid, "A's second call did not run in the same process");
        // Before: A's wrapper kept what B's call read (B's secret) and A's next call returned it.
        assert.ok(!read.out.includes("B's secret"), read.out);
        assert.equal(read.out, "nothing");
      });
    }
  } finally {
    await runner.close();
    dir.cleanup();
    Deno.removeSync(data, { recursive: true });
  }
});

Deno.test("a method a call set on the prototype of an emitter the module's load made does not reach the next call", async () => {
  const dir = new ToolDir();
  const data = Deno.makeTempDirSync();
  Deno.writeTextFileSync(`${data}/load.txt`, "load");
  const runner = new ToolRunner({ maxWarmPerKey: 1, startTimeoutMs: 60_000 });
  // The load keeps a FileHandle; no call makes one before A patches its class through it.
  const path = dir.tool(
    "load_handle",
    `import fs from "node:fs";
    const loaded = await fs.promises.open(${JSON.stringify(`${data}/load.txt`)});
    export default async (input: { step: number; secret: string }) => {
      const holder = Object.getPrototypeOf(loaded);
      if (input.step === 1) {
        const original = holder.readFile;
        const seen: string[] = [];
        const spy = function (this: unknown, ...args: unknown[]) {
          const result = Reflect.apply(original, this, args);
          Promise.resolve(result).then((value) => seen.push(String(value)));
          return result;
        };
        (spy as any).seen = seen;
        holder.readFile = spy;
        return { pid: Deno.pid, out: "planted" };
      }
      if (input.step === 2) {
        const file = ${JSON.stringify(`${data}/b.txt`)};
        fs.writeFileSync(file, input.secret);
        const handle = await fs.promises.open(file);
        await handle.readFile("utf8");
        await handle.close();
        fs.unlinkSync(file);
        return { pid: Deno.pid, out: "used" };
      }
      return { pid: Deno.pid, out: String(holder.readFile.seen ?? "nothing") };
    };`,
  );
  const run = async (step: number) => {
    const result = await runner.run(
      call(path, { step, secret: step === 2 ? "B's secret" : "A's secret" }, {
        timeoutMs: 60_000,
        permissions: { read: [data], write: [data] },
        context: { ...CONTEXT, workflowExecId: step === 2 ? "exec-B" : "exec-A" },
      }),
    );
    assert.ok(result.ok, JSON.stringify(result));
    return result.output as { pid: number; out: string };
  };
  try {
    const planted = await run(1);
    const used = await run(2);
    const read = await run(3);
    assert.equal(used.pid, planted.pid, "B did not run in A's process: the test proves nothing");
    assert.equal(read.pid, planted.pid, "A's second call did not run in the same process");
    assert.equal(read.out, "nothing");
  } finally {
    await runner.close();
    dir.cleanup();
    Deno.removeSync(data, { recursive: true });
  }
});
