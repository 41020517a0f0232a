/**
 * Node's `process` is set up in a sandbox only for a tool whose graph imports `node:` built-ins or names
 * `process` (it costs a cold start, and it cannot be set up after the realm is frozen). A tool that reaches
 * the global by a computed name gets a clear error, never an unguarded `process`.
 */
import assert from "node:assert/strict";
import { ToolRunner } from "../../pkg/runtime/tool_runner.ts";
import { call, ToolDir } from "./_helpers.ts";

Deno.test("Node's process: guarded where the tool names it, a clear error where it does not", async () => {
  const dir = new ToolDir();
  const runner = new ToolRunner();
  try {
    const named = dir.tool("named", `export default () => typeof process.stdout.write;`);
    const guarded = await runner.run(call(named, null));
    assert.deepEqual(guarded.ok && guarded.output, "function");
    // Raw TCP handles would open sockets past the per-call tracking of node:net.
    const binding = dir.tool("binding", `export default () => Object.keys(process.binding("tcp_wrap"));`);
    const refused = await runner.run(call(binding, null));
    assert.ok(!refused.ok, JSON.stringify(refused));
    assert.equal(refused.failure.code, "tool_permission_denied");
    assert.match(refused.failure.message, /process\.binding\("tcp_wrap"\) is refused/);

    const hidden = dir.tool(
      "hidden",
      `const name = ["pro", "cess"].join("");
       export default (mod: string) => (globalThis as any)[name].getBuiltinModule(mod);`,
    );
    for (const mod of ["node:vm", "node:fs"]) {
      const result = await runner.run(call(hidden, mod));
      assert.ok(!result.ok, JSON.stringify(result));
      assert.equal(result.failure.code, "tool_threw");
      assert.match(result.failure.message, /Node's process is not set up for this tool/);
    }

    const plain = dir.tool("plain", `export default (x: number) => x + 1;`);
    const ok = await runner.run(call(plain, 1));
    assert.deepEqual(ok.ok && ok.output, 2);
  } finally {
    await runner.close();
    dir.cleanup();
  }
});
