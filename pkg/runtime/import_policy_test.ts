import assert from "node:assert/strict";
import { join } from "node:path";
import { checkToolModule, findComputedImport } from "./import_policy.ts";

Deno.test("findComputedImport", async (t) => {
  const check = (source: string) => () => findComputedImport("/t/tool.ts", "/t/tool.ts", source);

  await t.step("accepts static imports, literal dynamic imports and import.meta", () => {
    check(
      `import x from "./x.ts";\nconst y = await import("./y.ts");\nimport('./z.ts', { with: { type: "json" } });`,
    )();
    check(`console.log(import.meta.url); obj.import(x);`)();
  });

  await t.step("refuses computed specifiers, with the line", () => {
    assert.throws(check(`const u = "./a.ts";\nawait import(u);`), /tool\.ts:2: import\(\) with a computed/);
    assert.throws(check("import(`data:${x}`)"), { code: "tool_import_refused" });
    assert.throws(check(`import /* hidden */ ("a" + b)`), { code: "tool_import_refused" });
    assert.throws(check(`import\n(\n  "./a.ts" + suffix)`), { code: "tool_import_refused" });
  });
});

Deno.test("checkToolModule", async (t) => {
  const dir = Deno.makeTempDirSync();
  const write = (name: string, source: string) => {
    Deno.writeTextFileSync(join(dir, name), source);
    return join(dir, name);
  };
  try {
    await t.step("accepts local files, JSON and node built-ins", async () => {
      write("lib.ts", `export const x = 1;`);
      write("data.json", `{}`);
      await checkToolModule(
        write(
          "ok.ts",
          `import { x } from "./lib.ts"; import d from "./data.json" with { type: "json" }; import "node:fs"; export default () => [x, d];`,
        ),
      );
    });

    await t.step("sees a change made after a successful check", async () => {
      const tool = write("changes.ts", `export default () => 1;`);
      await checkToolModule(tool);
      await new Promise((r) => setTimeout(r, 20));
      write("changes.ts", `import "data:text/javascript,1"; export default () => 1;`);
      await assert.rejects(checkToolModule(tool), { code: "tool_import_refused" });
    });

    await t.step("a missing file or a syntax error is tool_module_invalid", async () => {
      await assert.rejects(checkToolModule(join(dir, "absent.ts")), { code: "tool_module_invalid" });
      await assert.rejects(checkToolModule(write("syntax.ts", `export default (=> 1`)), {
        code: "tool_module_invalid",
      });
    });
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});
