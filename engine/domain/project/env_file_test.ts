import assert from "node:assert/strict";
import { parseEnvFile } from "./env_file.ts";

Deno.test("parseEnvFile", async (t) => {
  await t.step("reads plain, quoted and exported values; skips comments", () => {
    const text = [
      "# comment",
      "",
      "PLAIN=hello world # trailing comment",
      "export EXPORTED=1",
      "SINGLE='a # not a comment \\n'",
      'DOUBLE="line\\nnext \\"quoted\\""',
      "EMPTY=",
      "URL=http://x/#anchor",
    ].join("\n");
    const { values, diagnostics } = parseEnvFile("/p/.env", text);
    assert.deepEqual(diagnostics, []);
    assert.deepEqual(values, {
      PLAIN: "hello world",
      EXPORTED: "1",
      SINGLE: "a # not a comment \\n",
      DOUBLE: 'line\nnext "quoted"',
      EMPTY: "",
      URL: "http://x/#anchor",
    });
  });

  await t.step("reports malformed lines with their line and keeps the rest", () => {
    const { values, diagnostics } = parseEnvFile("/p/.env", 'A=1\n  bad line\nB="open\nC=3\r\n');
    assert.deepEqual(values, { A: "1", C: "3" });
    assert.deepEqual(diagnostics.map((d) => [d.line, d.col, d.path, d.message]), [
      [2, 3, "(root)", 'expected NAME=value, found "bad line"'],
      [3, 1, "B", "unterminated quote in the value of B"],
    ]);
  });
});
