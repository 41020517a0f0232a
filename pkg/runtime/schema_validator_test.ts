import assert from "node:assert/strict";
import { describeViolations, SchemaCache } from "./schema_validator.ts";

Deno.test("SchemaCache", async (t) => {
  const cache = new SchemaCache();

  await t.step("names the failing field paths", () => {
    const validate = cache.get({
      type: "object",
      properties: {
        items: { type: "array", items: { type: "object", properties: { qty: { type: "integer" } } } },
        "a/b": { type: "string" },
      },
      required: ["name"],
      additionalProperties: false,
    });
    const value = { items: [{ qty: 1 }, { qty: 1.5 }], "a/b": 1, extra: true };
    const violations = validate(value, JSON.stringify(value).length);
    assert.deepEqual(violations, [
      { path: "name", message: "is required" },
      { path: "extra", message: "must NOT have additional properties" },
      { path: "items[1].qty", message: "must be integer" },
      { path: "a/b", message: "must be string" },
    ]);
    assert.match(describeViolations(violations), /^name: is required; extra: /);
    assert.deepEqual(cache.get({ type: "string" })(3), [{ path: "(root)", message: "must be string" }]);
  });

  await t.step(
    "a schema with an unknown format writes no raw validator line (validate warns at the field)",
    () => {
      const printed: string[] = [];
      const saved = { log: console.log, warn: console.warn, error: console.error };
      console.log = console.warn = console.error = (...args: unknown[]) => printed.push(args.join(" "));
      try {
        assert.deepEqual(new SchemaCache().get({ type: "string", format: "emial" })("a"), []);
      } finally {
        Object.assign(console, saved);
      }
      assert.deepEqual(printed, []);
    },
  );

  await t.step("a large invalid value reports its first error; a small one at most 20, briefly", () => {
    const validate = cache.get({ type: "array", items: { type: "string" } });
    const big = new Array(1_900_000).fill(0);
    const first = validate(big, JSON.stringify(big).length);
    assert.deepEqual(first, [{ path: "[0]", message: "must be string" }]);
    const small = new Array(1000).fill(0);
    const listed = validate(small, JSON.stringify(small).length);
    assert.equal(listed.length, 20);
    assert.deepEqual(listed[19], { path: "[19]", message: "must be string" });
    assert.deepEqual(
      validate(small),
      [{ path: "[0]", message: "must be string" }],
      "no size: first error only",
    );
    const long = "k".repeat(5000);
    const described = describeViolations(
      cache.get({ type: "object", required: [long, long + "x"] })({}, 2),
    );
    assert.ok(described.length <= 2000, `description of ${described.length} chars`);
  });

  await t.step("compiles a schema once, even when it arrives as a new object", () => {
    const schema = { type: "object", properties: { n: { type: "number" } } };
    assert.equal(cache.get(schema), cache.get(structuredClone(schema)));
  });

  await t.step("two schemas may share an $id", () => {
    const a = cache.get({ $id: "same", type: "string" });
    const b = cache.get({ $id: "same", type: "number" });
    assert.deepEqual(a("x"), []);
    assert.deepEqual(b(1), []);
  });

  await t.step("knows string formats", () => {
    assert.equal(cache.get({ type: "string", format: "email" })("not-an-email").length, 1);
  });

  await t.step("an invalid schema throws", () => {
    assert.throws(() => cache.get({ type: "no-such-type" }));
  });
});

Deno.test("a tool's output with uniqueItems over 50,000 objects is checked in one pass (red team 6, S2)", () => {
  // Ajv's own uniqueItems compared every pair: 20,000 objects took 96 s on the runtime's event loop.
  const validate = new SchemaCache().get({
    type: "object",
    properties: { tags: { type: "array", uniqueItems: true } },
  });
  const tags = Array.from({ length: 50_000 }, (_, i) => ({ i }));
  assert.deepEqual(validate({ tags }), []);
  tags.push({ i: 49_999 });
  assert.deepEqual(validate({ tags }).map((v) => v.path), ["tags"]);
});

Deno.test("a check that stopped at its step bound is refused even when Ajv's answer was 'valid'", () => {
  // Outside break attempt brk43: past the bound every compiled function fails at once, and under a `not` (or
  // in a `oneOf` branch) a failure turns into a pass: a value the schema forbids came back valid, at once.
  const branch = (op: string) => ({
    type: "object",
    properties: { args: { type: "array", items: { $ref: "#/$defs/expr" } }, op: { const: op } },
  });
  const validate = new SchemaCache().get({
    $defs: { expr: { anyOf: [branch("add"), branch("mul"), { type: "number" }] } },
    not: { $ref: "#/$defs/expr" },
  });
  let value: unknown = 1;
  assert.equal(validate(value).length, 1); // an expression: forbidden
  for (let i = 0; i < 40; i++) value = { args: [value], op: "mul" };
  assert.deepEqual(validate(value).map((v) => v.message.match(/took more than \d+ steps/)?.[0]), [
    "took more than 2000000 steps",
  ]);
  assert.deepEqual(validate("not an expression"), []);
});
