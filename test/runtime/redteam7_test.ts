/**
 * Red team 7: an outside review of the sandbox on e97283f (docs/runtime-sandbox.md, "Red team 7"). Each
 * test failed on the code before its fix.
 */
import assert from "node:assert/strict";

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
