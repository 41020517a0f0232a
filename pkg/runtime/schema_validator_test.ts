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
    const violations = validate({ items: [{ qty: 1 }, { qty: 1.5 }], "a/b": 1, extra: true });
    assert.deepEqual(violations, [
      { path: "name", message: "is required" },
      { path: "extra", message: "must NOT have additional properties" },
      { path: "items[1].qty", message: "must be integer" },
      { path: "a/b", message: "must be string" },
    ]);
    assert.match(describeViolations(violations), /^name: is required; extra: /);
    assert.deepEqual(cache.get({ type: "string" })(3), [{ path: "(root)", message: "must be string" }]);
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
