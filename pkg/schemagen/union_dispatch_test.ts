import assert from "node:assert/strict";
import { dispatchUnions } from "./union_dispatch.ts";

Deno.test("dispatchUnions", async (t) => {
  await t.step("object branches tagged by `type` become if/then on the tag", () => {
    const schema = dispatchUnions({
      oneOf: [{ $ref: "#/$defs/a" }, { $ref: "#/$defs/b" }],
      $defs: {
        a: { type: "object", properties: { type: { const: "a" } }, required: ["type"] },
        b: { type: "object", properties: { type: { const: "b" } } },
      },
    });
    assert.deepEqual(schema.properties, {
      type: { enum: ["a", "b"], description: "Chooses the fields", default: "b" },
    });
    assert.equal(schema.required, undefined, "b is the default, so `type` may be missing");
    assert.deepEqual(schema.allOf, [
      {
        if: { type: "object", properties: { type: { const: "a" } }, required: ["type"] },
        then: { $ref: "#/$defs/a" },
      },
      { if: { type: "object", properties: { type: { const: "b" } } }, then: { $ref: "#/$defs/b" } },
    ]);
  });

  await t.step("branches of different JSON types dispatch on the type", () => {
    const schema = dispatchUnions({ anyOf: [{ type: "string", pattern: "^x" }, { type: "array" }] });
    assert.deepEqual(schema, {
      type: ["string", "array"],
      allOf: [{ if: { type: "string" }, then: { type: "string", pattern: "^x" } }, {
        if: { type: "array" },
        then: { type: "array" },
      }],
    });
  });

  await t.step("plain scalar unions collapse to a list of types", () => {
    assert.deepEqual(dispatchUnions({ anyOf: [{ type: "string" }, { type: "boolean" }] }), {
      type: ["string", "boolean"],
    });
  });

  await t.step("unions it cannot dispatch are left alone", () => {
    const union = { anyOf: [{ type: "object", properties: { a: {} } }, { type: "object" }] };
    assert.deepEqual(dispatchUnions(structuredClone(union)), union);
  });
});
