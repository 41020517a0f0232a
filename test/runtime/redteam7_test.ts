/**
 * Red team 7: an outside review of the sandbox on e97283f (docs/runtime-sandbox.md, "Red team 7"). Each
 * test failed on the code before its fix.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { MAX_GRAPH_CODE_BYTES, MAX_MODULE_BYTES } from "../../pkg/runtime/import_policy.ts";
import { LOG_LINE_COST } from "../../pkg/runtime/protocol.ts";
import { ToolRunner } from "../../pkg/runtime/tool_runner.ts";
import { call, ToolDir } from "./_helpers.ts";

/**
 * Runs `script` (TypeScript, this repository's import map) in a child `deno`, killed after `boundMs`: a
 * check that holds its thread for minutes cannot hang the test run. Returns the child's last stdout line.
 */
async function inChild(script: string, boundMs: number): Promise<string> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["eval", "--config", new URL("../../deno.json", import.meta.url).pathname, script],
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const bound = setTimeout(() => child.kill("SIGKILL"), boundMs);
  const out = await child.output();
  clearTimeout(bound);
  assert.ok(
    out.success,
    `did not end within ${boundMs} ms: ${new TextDecoder().decode(out.stderr).slice(-500)}`,
  );
  return new TextDecoder().decode(out.stdout).trim().split("\n").at(-1)!;
}

Deno.test("red team 7 R2: a format: url string is checked in one pass, for tool outputs and model replies", async () => {
  // A 128 KB string: ajv-formats' url expression took 21.5 s for 16 KB and grows about quadratically, so
  // on the code before the fix this child was killed at its bound, and the runtime's thread was held.
  const runtime = new URL("../../pkg/runtime/", import.meta.url).href;
  const script = `
    import { SchemaCache } from "${runtime}schema_validator.ts";
    import { compileOutputSchema } from "${runtime}agent/structured_output.ts";
    const schema = { type: "object", properties: { homepage: { type: "string", format: "url" } } };
    const evil = { homepage: "http://" + "::".repeat(64_000) + "\\n" };
    const tool = new SchemaCache().get(schema)(evil);
    const model = compileOutputSchema(schema, "test").check(JSON.stringify(evil));
    const fine = new SchemaCache().get(schema)({ homepage: "https://example.com/a" });
    console.log(JSON.stringify({ tool, model: model.ok ? "ok" : model.problems, fine }));`;
  const result = JSON.parse(await inChild(script, 60_000));
  assert.deepEqual(result.tool, [{ path: "homepage", message: 'must match format "url"' }]);
  assert.equal(result.model[0].path, "/homepage");
  assert.deepEqual(result.fine, []);
});

Deno.test("red team 7 R1: a module or a graph too big to parse is refused before the import check parses it", async () => {
  const dir = new ToolDir();
  const runner = new ToolRunner({ startTimeoutMs: 60_000 });
  try {
    // Before: a 6 MB module held the runtime's thread for a minute while it was parsed (1.2 GB kept), a
    // 26 MB one took the runtime to its heap limit; this one (2 MiB and a bit) was parsed and ran.
    const table = (bytes: number) => `export const table = [${"1,".repeat(Math.ceil(bytes / 2))}];\n`;
    Deno.writeTextFileSync(join(dir.path, "lib.ts"), table(MAX_MODULE_BYTES + 16));
    const big = dir.tool("big", `import { table } from "./lib.ts";\nexport default () => table.length;`);
    const one = await runner.run(call(big, {}, { timeoutMs: 120_000 }));
    assert.ok(!one.ok, "the big module ran");
    assert.equal(one.failure.code, "tool_import_refused", one.failure.message);
    assert.match(one.failure.message, new RegExp(`lib\\.ts.*over the ${MAX_MODULE_BYTES} bytes`));
    // Modules each under the per-module bound, together over the graph's.
    const parts = Math.ceil(MAX_GRAPH_CODE_BYTES / (MAX_MODULE_BYTES - 4096)) + 1;
    for (let i = 0; i < parts; i++) {
      Deno.writeTextFileSync(join(dir.path, `part${i}.ts`), table(MAX_MODULE_BYTES - 4096));
    }
    const imports = Array.from(
      { length: parts },
      (_, i) => `import { table as t${i} } from "./part${i}.ts";`,
    );
    const many = dir.tool("many", `${imports.join("\n")}\nexport default () => t0.length;`);
    const graph = await runner.run(call(many, {}, { timeoutMs: 120_000 }));
    assert.ok(!graph.ok, "the big graph ran");
    assert.equal(graph.failure.code, "tool_import_refused", graph.failure.message);
    assert.match(graph.failure.message, new RegExp(`over the ${MAX_GRAPH_CODE_BYTES} bytes`));
    const small = dir.tool("small", `export default () => "ran";`);
    const fine = await runner.run(call(small, {}, { timeoutMs: 60_000 }));
    assert.ok(fine.ok && fine.output === "ran", JSON.stringify(fine));
  } finally {
    await runner.close();
    dir.cleanup();
  }
});

Deno.test("red team 7 R5: short log lines cost the budget a record's worth, so one call cannot flood the logs", async () => {
  const dir = new ToolDir();
  const runner = new ToolRunner({ startTimeoutMs: 60_000 });
  try {
    // Before: a line cost its bytes plus one, and the 256 KiB budget let 131,072 lines of "x" through, each
    // a record on the runtime's console and the logs subject (minutes of the runtime's thread, 78 MB kept).
    const tool = dir.tool(
      "flood",
      `export default (n: number) => { for (let i = 0; i < n; i++) console.log("x"); return "done"; };`,
    );
    const lines: string[] = [];
    const result = await runner.run(
      call(tool, 140_000, { timeoutMs: 60_000, onLog: (e) => lines.push(e.message) }),
    );
    assert.ok(result.ok && result.output === "done", JSON.stringify(result));
    const budget = 256 * 1024; // ToolRunner's default maxLogBytes
    const most = Math.ceil(budget / (LOG_LINE_COST + 1)) + 1;
    assert.ok(lines.length <= most, `${lines.length} log lines delivered (at most ${most})`);
    assert.ok(lines.length >= most / 2, `only ${lines.length} lines delivered`);
  } finally {
    await runner.close();
    dir.cleanup();
  }
});
