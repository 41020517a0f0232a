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
