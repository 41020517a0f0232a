import assert from "node:assert/strict";
import { firstDuplicate, jsonSchemaAjv } from "./json_schema.ts";
import { addLinearFormats } from "./json_formats.ts";
import { BUDGET_KEYWORD, validationBudgetExhausted } from "./json_schema_budget.ts";

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

/** An expression tree whose two operator branches both recurse into `args` before `op` tells them apart. */
const EXPRESSION = {
  $defs: {
    expr: {
      anyOf: [
        {
          type: "object",
          properties: { args: { type: "array", items: { $ref: "#/$defs/expr" } }, op: { const: "add" } },
        },
        {
          type: "object",
          properties: { args: { type: "array", items: { $ref: "#/$defs/expr" } }, op: { const: "mul" } },
        },
        { type: "number" },
      ],
    },
  },
  $ref: "#/$defs/expr",
};

function nested(levels: number): unknown {
  let value: unknown = 1;
  for (let i = 0; i < levels; i++) value = { args: [value], op: "mul" };
  return value;
}

Deno.test("a validation stops at its step bound: a recursive anyOf does not double its work per level", () => {
  // Outside break attempt brk42: each level tried both branches on the whole value below it, 2^41 steps for
  // 40 levels (26 levels, 573 bytes: 7.5 s, on the event loop of the runtime or the engine).
  const ajv = jsonSchemaAjv({ allErrors: true, strict: false });
  const validate = ajv.compile(EXPRESSION);
  assert.equal(validate(nested(40)), false);
  assert.equal(validationBudgetExhausted(ajv), true);
  assert.ok(validate.errors?.some((e) => e.keyword === BUDGET_KEYWORD), JSON.stringify(validate.errors));
  // The next validation has its whole budget again.
  assert.equal(validate(nested(12)), true);
  assert.equal(validationBudgetExhausted(ajv), false);
});

Deno.test("a large value through a recursive schema is checked within the step bound", () => {
  // 100,000 nodes, each entering the recursive schema once: a twentieth of the bound.
  const ajv = jsonSchemaAjv({ strict: false });
  const validate = ajv.compile({
    $defs: {
      node: { type: "object", properties: { children: { type: "array", items: { $ref: "#/$defs/node" } } } },
    },
    $ref: "#/$defs/node",
  });
  const children = Array.from({ length: 100_000 }, () => ({ children: [] }));
  assert.equal(validate({ children }), true);
  assert.equal(validate({ children: [...children, { children: 1 }] }), false);
  assert.equal(validationBudgetExhausted(ajv), false);
});

Deno.test("a validation's loops take steps too: a large leaf revisited by a recursive anyOf stops at the bound", () => {
  // Outside break attempt brk43: entries alone were bounded, but each visit of a leaf of 100,000 numbers
  // walked all of it inside one entry, and 2^16 visits (16 levels, 200 KB) stayed under the entry bound and
  // took seconds (18 levels: 11 s).
  const ajv = jsonSchemaAjv({ strict: false });
  const vector = { type: "array", items: { type: "number" } };
  const schema: { $defs: { expr: { anyOf: unknown[] } } } = structuredClone(EXPRESSION);
  schema.$defs.expr.anyOf[2] = vector;
  const validate = ajv.compile(schema);
  let value: unknown = new Array(100_000).fill(0);
  for (let i = 0; i < 16; i++) value = { args: [value], op: "mul" };
  assert.equal(validate(value), false);
  assert.equal(validationBudgetExhausted(ajv), true);
  assert.ok(validate.errors?.some((e) => e.keyword === BUDGET_KEYWORD), JSON.stringify(validate.errors));
});

Deno.test("the step bound grows with the value: a million members each met by a loop or two pass", () => {
  const ajv = jsonSchemaAjv({ strict: false });
  const validate = ajv.compile({
    type: "array",
    items: { type: "object", additionalProperties: { type: "number" } },
    contains: { type: "object" },
  });
  const rows = Array.from({ length: 250_000 }, (_, i) => ({ a: i, b: i, c: i }));
  assert.equal(validate(rows), true);
  assert.equal(validationBudgetExhausted(ajv), false);
});

Deno.test("keywords that read their whole member take its steps: a long leaf revisited stops at the bound", () => {
  // Outside break attempt brk43: a keyword reads its whole string, array or object at each visit, without a
  // loop of the generated code, so the recursive anyOf above revisited a leaf under the bound for seconds
  // each (14 levels, 100 KB: `pattern` 39 s, `uniqueItems` 68 s, `maxProperties` 25 s, `maxLength` 3.5 s).
  const long = "a".repeat(100_000);
  const cases: [string, Record<string, unknown>, unknown, number][] = [
    ["pattern", { type: "string", pattern: "^[a-z]*$" }, long, 10],
    ["format", { type: "string", format: "email" }, `${long}@example.com`, 14],
    ["maxLength", { type: "string", maxLength: 1_000_000 }, long, 12],
    ["uniqueItems", { type: "array", uniqueItems: true }, Array.from({ length: 10_000 }, (_, i) => i), 10],
    [
      "maxProperties",
      { type: "object", maxProperties: 1_000_000 },
      Object.fromEntries(Array.from({ length: 10_000 }, (_, i) => [`k${i}`, 0])),
      10,
    ],
  ];
  for (const [keyword, leafSchema, leaf, levels] of cases) {
    const ajv = addLinearFormats(jsonSchemaAjv({ strict: false }));
    const schema: { $defs: { expr: { anyOf: unknown[] } } } = structuredClone(EXPRESSION);
    schema.$defs.expr.anyOf[2] = leafSchema;
    const validate = ajv.compile(schema);
    assert.equal(validate(leaf), true, keyword);
    let value: unknown = leaf;
    for (let i = 0; i < levels; i++) value = { args: [value], op: "mul" };
    assert.equal(validate(value), false, keyword);
    assert.equal(validationBudgetExhausted(ajv), true, keyword);
  }
});

Deno.test("length and count keywords keep Ajv's semantics and errors", () => {
  const ajv = jsonSchemaAjv({ allErrors: true, strict: false });
  const validate = ajv.compile({
    type: "object",
    properties: { name: { type: "string", minLength: 2, maxLength: 3 }, tags: { minProperties: 1 } },
    maxProperties: 2,
  });
  // Characters are code points, as Ajv counts them: one emoji is one character.
  assert.equal(validate({ name: "😀😀😀", tags: { a: 1 } }), true);
  assert.equal(validate({ name: "😀😀😀😀", tags: {}, extra: 1 }), false);
  // Custom keywords run after Ajv's own at the same place: the order is not the point here.
  assert.deepEqual(
    validate.errors?.map((e) => [e.instancePath, e.keyword, e.message]).sort(),
    [
      ["", "maxProperties", "must NOT have more than 2 properties"],
      ["/name", "maxLength", "must NOT have more than 3 characters"],
      ["/tags", "minProperties", "must NOT have fewer than 1 properties"],
    ],
  );
});
