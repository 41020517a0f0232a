import assert from "node:assert/strict";
import { join } from "node:path";
import { runSchemagen } from "../../cli/commands/schemagen.ts";
import { TASK_TYPES } from "../../engine/domain/task/schema.ts";
import { generateSchemas, SCHEMA_SOURCES, serializeSchema } from "./mod.ts";

const SCHEMAS_DIR = new URL("../../schemas/", import.meta.url).pathname;

Deno.test("generateSchemas", async (t) => {
  const generated = generateSchemas();

  await t.step(
    "schemas/ is what the generator writes (run `deno task schemagen` after changing a schema)",
    () => {
      for (const file of Object.keys(SCHEMA_SOURCES) as (keyof typeof SCHEMA_SOURCES)[]) {
        const stored = JSON.parse(Deno.readTextFileSync(join(SCHEMAS_DIR, file)));
        assert.deepEqual(stored, generated[file], `schemas/${file} is stale`);
      }
    },
  );

  await t.step("every schema is draft 2020-12 with a title and no leftover zod noise", () => {
    for (const [file, schema] of Object.entries(generated)) {
      assert.equal(schema.$schema, "https://json-schema.org/draft/2020-12/schema", file);
      assert.equal(typeof schema.title, "string", file);
      const text = JSON.stringify(schema);
      assert.ok(!text.includes('"propertyNames"'), file);
      assert.ok(!text.includes("9007199254740991"), file);
      assert.ok(!text.includes('"oneOf"'), `${file} still has a oneOf`);
    }
  });

  await t.step("a task is chosen by `type`, basic when missing", () => {
    const task = (generated["workflow.json"].$defs as Record<string, Record<string, unknown>>).task;
    const branches = task.allOf as { if: { properties: { type: { const: string } }; required?: string[] } }[];
    assert.deepEqual(branches.map((b) => b.if.properties.type.const), [...TASK_TYPES]);
    assert.equal(branches[0].if.required, undefined, "basic needs no type");
    assert.ok(branches.slice(1).every((b) => b.if.required?.includes("type")));
  });

  await t.step("runSchemagen writes the four files", async () => {
    const dir = await Deno.makeTempDir();
    try {
      const log = console.log;
      console.log = () => {};
      const code = await runSchemagen({ cwd: dir, out: "out" }).finally(() => console.log = log);
      assert.equal(code, 0);
      for (const [file, schema] of Object.entries(generated)) {
        assert.equal(Deno.readTextFileSync(join(dir, "out", file)), serializeSchema(schema));
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
});
