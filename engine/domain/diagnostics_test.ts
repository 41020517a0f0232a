import assert from "node:assert/strict";
import { ConfigError, type Diagnostic, formatDiagnostic, sortDiagnostics } from "./diagnostics.ts";

const error: Diagnostic = {
  severity: "error",
  file: "/p/workflows/w.yaml",
  line: 3,
  col: 5,
  path: "tasks[0].use",
  message: 'unknown tool "x"',
};

Deno.test("formatDiagnostic", async (t) => {
  await t.step("prints file:line:col: path: message, relative to cwd", () => {
    assert.equal(formatDiagnostic(error, "/p"), 'workflows/w.yaml:3:5: tasks[0].use: unknown tool "x"');
    assert.equal(formatDiagnostic(error), '/p/workflows/w.yaml:3:5: tasks[0].use: unknown tool "x"');
  });

  await t.step("marks warnings", () => {
    assert.equal(
      formatDiagnostic({ ...error, severity: "warning" }, "/p"),
      'workflows/w.yaml:3:5: tasks[0].use: warning: unknown tool "x"',
    );
  });
});

Deno.test("ConfigError carries every diagnostic and lists the errors", () => {
  const warning: Diagnostic = { ...error, severity: "warning", line: 1, message: "never runs" };
  const err = new ConfigError([warning, error]);
  assert.deepEqual(err.diagnostics, [warning, error]);
  assert.equal(err.name, "ConfigError");
  assert.match(err.message, /\(1 error\(s\)\)/);
  assert.ok(err.message.includes('unknown tool "x"'));
  assert.ok(!err.message.includes("never runs"));
});

Deno.test("sortDiagnostics orders by file, line, column", () => {
  const a = { ...error, file: "/p/a.yaml", line: 9 };
  const b = { ...error, line: 2 };
  const c = { ...error, line: 2, col: 1 };
  assert.deepEqual(sortDiagnostics([b, a, c]), [a, c, b]);
});
