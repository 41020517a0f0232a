/**
 * Red team 6: an outside-style review of the sandbox (docs/runtime-sandbox.md, "Red team 6"). Real sandbox
 * processes; each test failed on the code before its fix.
 */
import assert from "node:assert/strict";
import { ToolRunner } from "../../pkg/runtime/tool_runner.ts";
import { call, ToolDir } from "./_helpers.ts";

Deno.test("red team 6 S1: node:sqlite is refused, imported or reached at run time (its temp files escape every grant)", async () => {
  const dir = new ToolDir();
  const runner = new ToolRunner({ startTimeoutMs: 60_000 });
  const outside = Deno.makeTempDirSync({ prefix: "compozy-sqlite-temp-" });
  try {
    // With no grant at all, SQLite created its temp files in a folder of the tool's choosing (or /var/tmp),
    // and in /dev/shm they held RAM that the memory watch never counted.
    const source = (importLine: string, lateLoad = "") =>
      `${importLine}
       export default (input: { dir: string }) => {
         ${lateLoad}
         const db = new DatabaseSync(":memory:");
         db.exec("PRAGMA temp_store_directory='" + input.dir + "'");
         db.exec("PRAGMA cache_size=1; CREATE TEMP TABLE big(x)");
         db.exec("WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM c WHERE i < 8) INSERT INTO big SELECT randomblob(1048576) FROM c");
         return "wrote";
       };`;
    const imported = await runner.run(call(
      dir.tool("sqlite_import", source(`import { DatabaseSync } from "node:sqlite";`)),
      { dir: outside },
      { timeoutMs: 60_000 },
    ));
    assert.ok(!imported.ok, JSON.stringify(imported));
    assert.equal(imported.failure.code, "tool_import_refused", imported.failure.message);
    assert.match(imported.failure.message, /node:sqlite/);
    const late = await runner.run(call(
      dir.tool(
        "sqlite_late",
        source("", `const { DatabaseSync } = (globalThis as any).process.getBuiltinModule("node:sqlite");`),
      ),
      { dir: outside },
      { timeoutMs: 60_000 },
    ));
    assert.ok(!late.ok, JSON.stringify(late));
    assert.equal(late.failure.code, "tool_permission_denied", late.failure.message);
  } finally {
    await runner.close();
    dir.cleanup();
    Deno.removeSync(outside, { recursive: true });
  }
});

Deno.test("red team 6 S3: what a call's removeListener handler changes while its listeners are removed is put back too", async () => {
  const dir = new ToolDir();
  const runner = new ToolRunner({ maxWarmPerKey: 1, startTimeoutMs: 60_000 });
  try {
    // The put-back ran first, then the removal of the call's listeners ran its removeListener handler,
    // which planted a module property, the HTTP agent's lookup and maxSockets for the next calls.
    const tool = dir.tool(
      "plants",
      `import fs from "node:fs";
       import http from "node:http";
       export default (input: { plant: boolean }) => {
         const seen = {
           marker: (fs as any).marker ?? null,
           lookup: typeof (http.globalAgent as any).options.lookup,
           maxSockets: String(http.globalAgent.maxSockets),
           global: (globalThis as any).planted ?? null,
           pid: Deno.pid,
         };
         if (input.plant) {
           process.on("newListener", function noop() {});
           process.on("removeListener", () => {
             (fs as any).marker = "planted by call 0";
             (http.globalAgent as any).options.lookup = (_h: string, _o: unknown, cb: any) => cb(null, "10.0.0.1", 4);
             http.globalAgent.maxSockets = 1;
             (globalThis as any).planted = "planted by call 0";
           });
         }
         return seen;
       };`,
    );
    const outputs = [];
    for (const plant of [true, false, false]) {
      const result = await runner.run(call(tool, { plant }, { timeoutMs: 30_000 }));
      assert.ok(result.ok, JSON.stringify(result));
      outputs.push(result.output as Record<string, unknown>);
    }
    assert.equal(new Set(outputs.map((o) => o.pid)).size, 1, "the calls ran in one warm process");
    for (const seen of outputs.slice(1)) {
      assert.deepEqual(
        { marker: seen.marker, lookup: seen.lookup, maxSockets: seen.maxSockets, global: seen.global },
        { marker: null, lookup: "undefined", maxSockets: "Infinity", global: null },
      );
    }
  } finally {
    await runner.close();
    dir.cleanup();
  }
});

Deno.test("red team 6 S4: an output is read once, and what is checked is what is delivered", async () => {
  const dir = new ToolDir();
  const runner = new ToolRunner({ maxWarmPerKey: 1, startTimeoutMs: 60_000 });
  try {
    // Each output answers its first read with one value and every later read with the other. Before, the
    // encoding read it once and the check again: NaN encoded (as null) and 1 checked, or the reverse.
    const tool = dir.tool(
      "two_faced",
      `const twoFaced = (first: unknown, then: unknown) => {
         let reads = 0;
         return () => (reads++ === 0 ? first : then);
       };
       export default (input: { kind: string }) => {
         if (input.kind === "getter_nan_first") {
           const read = twoFaced(NaN, 1);
           return { get v() { return read(); } };
         }
         if (input.kind === "getter_one_first") {
           const read = twoFaced(1, NaN);
           return { get v() { return read(); } };
         }
         if (input.kind === "proxy_nan_first") {
           const read = twoFaced(NaN, 1);
           return new Proxy({ v: 0 }, { get: (target, key) => key === "v" ? read() : Reflect.get(target, key) });
         }
         const read = twoFaced(["a"], new Map());
         return { get list() { return read(); } };
       };`,
    );
    const run = (kind: string) => runner.run(call(tool, { kind }, { timeoutMs: 60_000 }));
    for (const kind of ["getter_nan_first", "proxy_nan_first"]) {
      const result = await run(kind);
      assert.ok(!result.ok, `${kind}: delivered ${JSON.stringify(result)}`);
      assert.equal(result.failure.code, "tool_output_invalid", `${kind}: ${JSON.stringify(result.failure)}`);
      assert.match(result.failure.message, /v is NaN/, kind);
    }
    for (const [kind, output] of [["getter_one_first", { v: 1 }], ["map_second", { list: ["a"] }]] as const) {
      const result = await run(kind);
      assert.ok(result.ok, `${kind}: ${JSON.stringify(result)}`);
      assert.deepEqual(result.output, output, kind);
    }
  } finally {
    await runner.close();
    dir.cleanup();
  }
});
