import assert from "node:assert/strict";
import { describe, validateSchema } from "./schema_validation.ts";
import { parseYaml, type YamlSource } from "./yaml_source.ts";

function check(kind: "workflow" | "tool" | "agent" | "project", text: string): string[] {
  const result = parseYaml("/p/f.yaml", text);
  if (result.kind !== "ok") throw new Error("fixture does not parse");
  return validateSchema(kind, result.source as YamlSource).map((d) =>
    `${d.line}:${d.col} ${d.path}: ${d.message}`
  );
}

Deno.test("validateSchema words errors as expected vs found, at the field", async (t) => {
  await t.step("a wrong type", () => {
    assert.deepEqual(check("tool", "id: t\nexecute: 42\n"), [
      "2:10 execute: expected a string, found integer 42",
    ]);
  });

  await t.step("an unknown field, at its key, with a hint", () => {
    assert.deepEqual(check("tool", "id: t\nexecute: ./t.ts\ntimout: 5s\n"), [
      '3:1 timout: unknown field "timout" (did you mean "timeout"?)',
    ]);
  });

  await t.step("a task's errors come from its own type only", () => {
    assert.deepEqual(
      check("workflow", "id: w\ntasks:\n  - id: s\n    type: sleep\n    duration: 5 minutes\n"),
      [
        '5:15 tasks[0].duration: expected a duration such as 500ms, 30s, 5m, 1h or 1d, found string "5 minutes"',
      ],
    );
  });

  await t.step("a task without type is basic", () => {
    assert.deepEqual(check("workflow", "id: w\ntasks:\n  - id: a\n    duration: 1s\n"), [
      '3:5 tasks[0]: missing required field "use"',
      '4:5 tasks[0].duration: unknown field "duration"',
    ]);
  });

  await t.step("permissions accept a boolean or a list", () => {
    assert.deepEqual(
      check("tool", "id: t\nexecute: ./t.ts\npermissions: { net: true, read: [./data] }\n"),
      [],
    );
    assert.deepEqual(check("tool", "id: t\nexecute: ./t.ts\npermissions: { net: yes-please }\n"), [
      '3:21 permissions.net: expected a boolean or a list, found string "yes-please"',
    ]);
  });
});

Deno.test("every schema compiles and accepts a minimal file", () => {
  assert.deepEqual(check("project", "name: p\nworkflows: [{ source: ./w.yaml }]\n"), []);
  assert.deepEqual(check("workflow", "id: w\ntasks: [{ id: a, use: tool(id=t) }]\n"), []);
  assert.deepEqual(check("tool", "id: t\nexecute: ./t.ts\n"), []);
  assert.deepEqual(check("agent", "id: a\nconfig: { $model: m }\ninstructions: Help.\n"), []);
  assert.deepEqual(check("agent", "id: a\nconfig: { provider: groq }\ninstructions: Help.\n"), [
    '2:9 config: missing required field "model" (give $model, or provider and model)',
  ]);
});

Deno.test("describe quotes what was found", () => {
  assert.equal(describe("x"), 'string "x"');
  assert.equal(describe(1.5), "number 1.5");
  assert.equal(describe(2), "integer 2");
  assert.equal(describe(null), "null");
  assert.equal(describe([]), "a list");
  assert.equal(describe({}), "a mapping");
  assert.equal(describe(true), "boolean true");
  assert.equal(describe("y".repeat(100)).length, 69);
});
