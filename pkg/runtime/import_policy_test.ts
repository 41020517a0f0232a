import assert from "node:assert/strict";
import { join } from "node:path";
import { checkScriptModule, checkToolModule, findComputedImport } from "./import_policy.ts";
import { scanModule } from "./import_scan.ts";

Deno.test("findComputedImport", async (t) => {
  const check = (source: string) => () => findComputedImport("/t/tool.ts", "/t/tool.ts", source);

  await t.step("accepts static imports, literal dynamic imports and import.meta", () => {
    check(
      `import x from "./x.ts";\nconst y = await import("./y.ts");\nimport('./z.json', { with: { type: "json" } });`,
    )();
    check(`console.log(import.meta.url); obj.import(x);`)();
  });

  await t.step("refuses computed specifiers, with the line", () => {
    assert.throws(check(`const u = "./a.ts";\nawait import(u);`), /tool\.ts:2:7: import\(\) with a computed/);
    assert.throws(check("import(`data:${x}`)"), { code: "tool_import_refused" });
    assert.throws(check(`import /* hidden */ ("a" + b)`), { code: "tool_import_refused" });
    assert.throws(check(`import\n(\n  "./a.ts" + suffix)`), { code: "tool_import_refused" });
  });

  // Each of these fooled the earlier text scan, or is of the same family: the parser sees them all.
  const bypasses: Record<string, string> = {
    "a // comment ended by CR": "await import//x\r(spec);",
    "a // comment ended by LS": "await import//x\u2028(spec);",
    "a // comment ended by PS": "await import//x\u2029(spec);",
    "a /* */ comment holding a line break": "await import/*\r\n*/(spec);",
    "a spread": "const a = { ...import(spec) };",
    "a spread in an array": "const a = [...import(spec)];",
    "a spread in arguments": "f(...import(spec));",
    "a template literal with a hole": "import(`./${name}.ts`);",
    "a template literal without a hole": "import(`./plain.ts`);",
    "a unicode escape in the specifier's name": "const \\u0073pec = 'x'; import(\\u0073pec);",
    "a parenthesised string": 'import(("./a.ts"));',
    "a string concatenation": 'import("./a" + ".ts");',
    "a sequence expression": 'import((0, "./a.ts"));',
    "a literal with computed options": 'import("./a.json", opts);',
    "a literal with a non-json type": 'import("./.env", { with: { type: "text" } });',
    "a json type on a non-json file": 'import("./secret.txt", { with: { type: "json" } });',
    "a computed type": 'import("./a.json", { with: { type: t } });',
    "an import inside a TypeScript cast": "await (import(spec) as Promise<unknown>);",
    "an import in a default parameter": "function f(m = import(spec)) { return m; }",
    "an import in a class field": "class A { m = import(spec); }",
    "an import in a JSX-looking generic": "const f = <T,>(x: T) => import(String(x));",
  };
  for (const [name, source] of Object.entries(bypasses)) {
    await t.step(`refuses ${name}`, () => {
      assert.throws(check(source), { code: "tool_import_refused" });
    });
  }

  await t.step("a file the parser cannot read is refused, not guessed at", () => {
    assert.throws(check("import source x from './a.wasm';"), { code: "tool_import_refused" });
    assert.throws(check("const x = import.defer('./a.ts');"), { code: "tool_import_refused" });
  });

  await t.step("import() in comments and strings is not code", () => {
    check(`// import(spec)\nconst s = "import(spec)"; /* import(x) */ const u = \`import(\${1})\`;`)();
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

    await t.step("sees a fix made after a refused check (a refusal is kept only per version)", async () => {
      const tool = write("fixed.ts", `export default (s: string) => import(s);`);
      await assert.rejects(checkToolModule(tool), { code: "tool_import_refused" });
      await new Promise((r) => setTimeout(r, 20));
      write("fixed.ts", `export default () => 1;`);
      await checkToolModule(tool);
    });

    await t.step("sees a missing import that appears after the check", async () => {
      const tool = write("later.ts", `export { x as default } from "./appears.ts";`);
      await assert.rejects(checkToolModule(tool), { code: "tool_module_invalid" });
      write("appears.ts", `export const x = () => 1;`);
      await checkToolModule(tool);
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

Deno.test("scanModule tells whether a module names Node's process", () => {
  const names = (source: string) => scanModule("/t/tool.ts", "/t/tool.ts", source).namesProcess;
  assert.equal(names(`export default () => 1;`), false);
  assert.equal(names(`export default () => "processed";`), false);
  assert.equal(names(`export default () => process.env.X;`), true);
  assert.equal(names(`export default () => globalThis.process;`), true);
  assert.equal(names(`export default () => (globalThis as any)["process"];`), true);
  assert.equal(names(`const { process: p } = globalThis; export default () => p;`), true);
});

// Outside break attempt brk42: a refused graph was checked afresh at each start of the script, its parse on
// the runtime's thread each time. Shown with the content replaced under the same modification time.
Deno.test("checkScriptModule keeps a refusal for the version of the graph's files", async () => {
  const dir = Deno.makeTempDirSync();
  try {
    const script = join(dir, "server.ts");
    Deno.writeTextFileSync(script, `const s = "x";\nawait import(s);`);
    await assert.rejects(checkScriptModule(script, [], true), { code: "tool_import_refused" });
    const { atime, mtime } = Deno.statSync(script);
    Deno.writeTextFileSync(script, `console.log("fixed");`);
    Deno.utimeSync(script, atime!, mtime!);
    await assert.rejects(checkScriptModule(script, [], true), { code: "tool_import_refused" });
    Deno.utimeSync(script, atime!, new Date(mtime!.getTime() + 1000));
    await checkScriptModule(script, [], true);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});
