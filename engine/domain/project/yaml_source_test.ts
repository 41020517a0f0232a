import assert from "node:assert/strict";
import { formatPath, locate, locateInString, parseYaml, type YamlSource } from "./yaml_source.ts";

function parse(text: string): YamlSource {
  const result = parseYaml("/p/w.yaml", text);
  if (result.kind !== "ok") throw new Error(JSON.stringify(result));
  return result.source;
}

Deno.test("formatPath", () => {
  assert.equal(formatPath(["tasks", 2, "with", "city"]), "tasks[2].with.city");
  assert.equal(formatPath([0, "a"]), "[0].a");
  assert.equal(formatPath([]), "(root)");
});

Deno.test("locate", async (t) => {
  const source = parse(
    [
      "id: w", //                              1
      "base: &base { timeout: 5s }", //        2
      "tasks:", //                             3
      "  - id: a", //                          4
      "    with:", //                          5
      "      city: Lisbon", //                 6
      "  - <<: *base", //                      7
      "    id: b", //                          8
      "    with:", //                          9
    ].join("\n"),
  );

  await t.step("finds values and keys", () => {
    assert.deepEqual(locate(source, ["tasks", 0, "with", "city"]), { line: 6, col: 13 });
    assert.deepEqual(locate(source, ["tasks", 0, "with", "city"], "key"), { line: 6, col: 7 });
    assert.deepEqual(locate(source, ["tasks", 1]), { line: 7, col: 5 });
  });

  await t.step("an empty value points at its key", () => {
    assert.deepEqual(locate(source, ["tasks", 1, "with"]), { line: 9, col: 5 });
  });

  await t.step("follows merge keys into the aliased map", () => {
    assert.deepEqual(locate(source, ["tasks", 1, "timeout"]), { line: 2, col: 24 });
  });

  await t.step("a path that leads nowhere stops at the nearest node", () => {
    assert.deepEqual(locate(source, ["tasks", 0, "nope", "deeper"]), { line: 4, col: 5 });
  });
});

Deno.test("locateInString points inside one-line strings", () => {
  const source = parse('a: "x {{ bad"\nb: y {{ bad\nc: "esc\\t {{"\n');
  assert.deepEqual(locateInString(source, ["a"], 2), { line: 1, col: 7 });
  assert.deepEqual(locateInString(source, ["b"], 2), { line: 2, col: 6 });
  // With an escape, source and value no longer line up: the string's own position.
  assert.deepEqual(locateInString(source, ["c"], 5), { line: 3, col: 4 });
});

Deno.test("parseYaml", async (t) => {
  await t.step("reports every syntax error with its position", () => {
    const result = parseYaml("/p/w.yaml", "a: [1, 2\nb: {\n");
    assert.equal(result.kind, "invalid");
    if (result.kind !== "invalid") return;
    assert.ok(result.diagnostics.length >= 1);
    assert.ok(result.diagnostics.every((d) => d.line >= 1 && d.message.startsWith("YAML syntax error: ")));
  });

  await t.step("reports a duplicate key at the later one", () => {
    const result = parseYaml("/p/w.yaml", "a: 1\nb: 2\na: 3\n");
    assert.equal(result.kind, "invalid");
    if (result.kind !== "invalid") return;
    assert.deepEqual(result.diagnostics.map((d) => [d.line, d.col, d.path, d.message]), [[
      3,
      1,
      "a",
      'duplicate key "a"',
    ]]);
  });

  await t.step("keeps aliases that stay small", () => {
    const source = parse("a: &x [1, 2]\nb: [*x, *x]\n");
    assert.deepEqual(source.value, { a: [1, 2], b: [[1, 2], [1, 2]] });
  });
});
