/**
 * A module `deno info` cannot load fails with Deno's error, which quotes the offending line of the file, and
 * Deno parses a file with no extension as TypeScript: a tool with no grant that imported "../.env" failed
 * with the project's secret in its message (outside break attempt brk-sbx3 G4), which the task's state and
 * history, the logs and `compozy validate` keep. Real `deno info`, real tool and script checks.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { ToolRunner } from "../../pkg/runtime/tool_runner.ts";
import { call } from "./_helpers.ts";

const SECRET = "sk-proj-G4/leak=DEF ghi";

async function project(): Promise<string> {
  const root = await Deno.makeTempDir({ prefix: "compozy-g4-" });
  await Deno.writeTextFile(join(root, "compozy.yaml"), "name: g4\n");
  // Not TypeScript past the `=`: Deno's parse error quotes this line.
  await Deno.writeTextFile(join(root, ".env"), `OPENAI_API_KEY=${SECRET}\n`);
  await Deno.mkdir(join(root, "tools"));
  return root;
}

Deno.test("break G4: a tool importing a file it may not read fails without the file's content", async (t) => {
  const root = await project();
  const outside = await Deno.makeTempDir({ prefix: "compozy-g4-outside-" });
  await Deno.writeTextFile(join(outside, "credentials"), `token: ${SECRET}\n`);
  const runner = new ToolRunner({ maxWarmPerKey: 1 });
  try {
    const cases = [
      ["the project's .env, from a folder of tools", "tools", "../.env", /outside the tool's folder/],
      ["the project's .env, next to the tool", ".", "./.env", /never readable/],
      [
        "a file outside the tool's folder",
        "tools",
        join(outside, "credentials"),
        /outside the tool's folder/,
      ],
    ] as const;
    for (const [what, folder, specifier, why] of cases) {
      await t.step(what, async () => {
        const tool = join(root, folder, "leak.ts");
        await Deno.writeTextFile(tool, `import ${JSON.stringify(specifier)};\nexport default () => 1;\n`);
        const result = await runner.run(call(tool, null, { timeoutMs: 30_000 }));
        assert.ok(!result.ok, JSON.stringify(result));
        const reported = JSON.stringify({ message: result.failure.message, details: result.failure.details });
        // Before: tool_module_invalid, "SyntaxError: … 1 | OPENAI_API_KEY=sk-proj-G4/leak=DEF ghi …".
        assert.ok(!reported.includes("G4/leak"), `the failure quotes the file: ${reported}`);
        assert.equal(result.failure.code, "tool_import_refused", reported);
        assert.match(result.failure.message, why);
      });
    }
    await t.step("a syntax error in the tool's own file is still shown", async () => {
      const tool = join(root, "tools", "broken.ts");
      await Deno.writeTextFile(tool, `export default () => { return 1 +;\n`);
      const result = await runner.run(call(tool, null, { timeoutMs: 30_000 }));
      assert.ok(!result.ok);
      assert.equal(result.failure.code, "tool_module_invalid");
      assert.match(result.failure.message, /return 1 \+;/);
    });
  } finally {
    await runner.close();
    await Deno.remove(root, { recursive: true });
    await Deno.remove(outside, { recursive: true });
  }
});

Deno.test("break G4: an MCP script importing the project's .env is refused without its content", async () => {
  const { scriptCommand } = await import("../../pkg/runtime/mcp/mcp_transport.ts");
  const root = await project();
  try {
    const script = join(root, "server.ts");
    await Deno.writeTextFile(script, `import "./.env";\nconsole.log("started");\n`);
    const error = await scriptCommand({ id: "s", script, timeoutMs: 5_000, cwd: root }, script).then(
      () => undefined,
      (e) => e as { code?: string; message: string },
    );
    // Before: the check skipped the module (deno info gives no local path for a module in error), and the
    // script's own start printed the parse error, line and secret, on the stderr its failure quotes.
    assert.ok(error !== undefined, "the script's graph was accepted");
    assert.equal(error.code, "tool_import_refused", error.message);
    assert.ok(!error.message.includes("G4/leak"), error.message);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
