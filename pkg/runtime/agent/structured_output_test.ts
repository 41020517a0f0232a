import assert from "node:assert/strict";
import { AgentFailure } from "./agent_failure.ts";
import { compileOutputSchema, describeProblems } from "./structured_output.ts";

const schema = {
  type: "object",
  properties: {
    advice: { type: "string", minLength: 1 },
    items: {
      type: "array",
      items: { type: "object", properties: { name: { type: "string" } }, required: ["name"] },
    },
    contact: { type: "string", format: "email" },
  },
  required: ["advice"],
  additionalProperties: false,
};

Deno.test("compileOutputSchema", async (t) => {
  const output = compileOutputSchema(schema, "agent 'a'");

  await t.step("a valid reply is parsed", () => {
    assert.deepEqual(output.check('{"advice":"coat","items":[{"name":"hat"}]}'), {
      ok: true,
      value: { advice: "coat", items: [{ name: "hat" }] },
    });
  });

  await t.step("problems name the field at fault, nested ones by JSON Pointer", () => {
    const check = output.check('{"items":[{"nme":"hat"}],"advice":"","a/b":1,"contact":"nobody"}');
    assert.equal(check.ok, false);
    assert.deepEqual(check.problems.toSorted(byPath), [
      { path: "/a~1b", message: "is not allowed" },
      { path: "/advice", message: "must NOT have fewer than 1 characters" },
      { path: "/contact", message: 'must match format "email"' },
      { path: "/items/0/name", message: "is required" },
    ]);
  });

  await t.step("a reply that is not JSON is one problem at the root", () => {
    const check = output.check("Sure! Here it is.");
    assert.equal(check.ok, false);
    assert.equal(check.problems.length, 1);
    assert.equal(check.problems[0].path, "/");
    assert.match(check.problems[0].message, /not JSON/);
  });

  await t.step("a Markdown fence around the JSON is unwrapped", () => {
    assert.equal(output.check('```json\n{"advice":"coat"}\n```').ok, true);
    assert.equal(output.check('```\n{"advice":"coat"}```').ok, true);
  });

  await t.step("describeProblems joins path: message", () => {
    assert.equal(
      describeProblems([{ path: "/a", message: "is required" }, { path: "/", message: "x" }]),
      "/a: is required; /: x",
    );
  });

  await t.step("the response format carries the schema to the provider", async () => {
    assert.deepEqual(await output.responseFormat.responseFormat, { type: "json", schema });
  });

  await t.step("the same schema twice, $id included, compiles once", () => {
    const withId = { $id: "https://compozy.dev/test/advice", type: "object" };
    compileOutputSchema({ ...withId }, "agent 'a'");
    assert.equal(compileOutputSchema({ ...withId }, "agent 'b'").check("{}").ok, true);
  });

  await t.step("an invalid schema is agent_config_invalid", () => {
    assert.throws(
      () => compileOutputSchema({ type: "object", properties: { a: { type: "strnig" } } }, "agent 'a'"),
      (error: unknown) =>
        error instanceof AgentFailure && error.code === "agent_config_invalid" &&
        /agent 'a'/.test(error.message),
    );
  });
});

function byPath(a: { path: string }, b: { path: string }) {
  return a.path.localeCompare(b.path);
}

Deno.test("a reply whose check stopped at its step bound is not ok, even when Ajv's answer was 'valid'", () => {
  // Outside break attempt brk43: past the bound every check fails, and under a `not` a failure is a pass.
  const branch = (op: string) => ({
    type: "object",
    properties: { args: { type: "array", items: { $ref: "#/$defs/expr" } }, op: { const: op } },
  });
  const output = compileOutputSchema({
    $defs: { expr: { anyOf: [branch("add"), branch("mul"), { type: "number" }] } },
    not: { $ref: "#/$defs/expr" },
  }, "agent 'a'");
  let value: unknown = 1;
  for (let i = 0; i < 40; i++) value = { args: [value], op: "mul" };
  const check = output.check(JSON.stringify(value));
  assert.equal(check.ok, false);
  assert.match(JSON.stringify(check), /took more than 2000000 steps/);
  assert.equal(output.check('"words"').ok, true);
});
