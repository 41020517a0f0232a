import assert from "node:assert/strict";
import { firstDuplicate, jsonSchemaAjv } from "./json_schema.ts";

Deno.test("uniqueItems: equal items are found whatever their key order; distinct ones pass", () => {
  const validate = jsonSchemaAjv({ allErrors: true, strict: false }).compile({
    type: "object",
    properties: { tags: { type: "array", uniqueItems: true } },
  });
  assert.equal(validate({ tags: [{ a: 1, b: [1, 2] }, { a: 1, b: [2, 1] }, "1", 1, null, true] }), true);
  assert.equal(validate({ tags: [{ a: 1, b: { c: 2, d: 3 } }, 0, { b: { d: 3, c: 2 }, a: 1 }] }), false);
  assert.deepEqual(
    validate.errors?.map((e) => [e.instancePath, e.keyword, e.message]),
    [["/tags", "uniqueItems", "must NOT have duplicate items (items ## 0 and 2 are identical)"]],
  );
  assert.deepEqual(firstDuplicate([1, 2, 3, 2, 1]), [1, 3]);
  assert.equal(firstDuplicate(["1", 1, [1], { "1": 1 }]), undefined);
});

Deno.test("uniqueItems over 50,000 objects is one pass, not a comparison of every pair", () => {
  // Ajv's own check compared every pair: 20,000 objects took 96 s; 50,000 would take about ten minutes.
  const validate = jsonSchemaAjv({ strict: false }).compile({ type: "array", uniqueItems: true });
  const items = Array.from({ length: 50_000 }, (_, i) => ({ i, tag: `t${i}` }));
  assert.equal(validate(items), true);
  items.push({ tag: "t7", i: 7 });
  assert.equal(validate(items), false);
});

Deno.test("patterns run in linear time wherever user data is checked (a workflow's input included)", () => {
  // On JavaScript's backtracking engine, 40 `a`s and a `!` against ^(a+)+$ take about 2^40 steps.
  const validate = jsonSchemaAjv({ allErrors: true, strict: false }).compile({
    type: "object",
    properties: { name: { type: "string", pattern: "^(a+)+$" } },
  });
  assert.equal(validate({ name: `${"a".repeat(40)}!` }), false);
  assert.equal(validate({ name: "a".repeat(40) }), true);
});
