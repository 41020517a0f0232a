/**
 * `compozy validate` (runValidate): diagnostics one per line, relative paths, no colour when not on a
 * terminal, exit code 1 on errors only.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { runValidate } from "../../cli/commands/validate.ts";
import { stageProject } from "./stage.ts";

async function capture(run: () => Promise<number>): Promise<{ code: number; lines: string[] }> {
  const lines: string[] = [];
  const saved = { log: console.log, warn: console.warn, error: console.error };
  console.log = console.warn = console.error = (...args: unknown[]) => lines.push(args.join(" "));
  try {
    return { code: await run(), lines };
  } finally {
    Object.assign(console, saved);
  }
}

const CORPUS = new URL("./corpus/", import.meta.url).pathname;

Deno.test("runValidate", async (t) => {
  await t.step("a clean project exits 0", async () => {
    const hello = new URL("../../examples/hello", import.meta.url).pathname;
    const { code, lines } = await capture(() => runValidate({ cwd: hello }));
    assert.equal(code, 0);
    assert.deepEqual(lines, ["project is valid"]);
  });

  await t.step("errors print as file:line:col: path: message and exit 1", async () => {
    const dir = await stageProject(join(CORPUS, "transition-unknown"));
    try {
      const { code, lines } = await capture(() => runValidate({ cwd: dir }));
      assert.equal(code, 1);
      assert.deepEqual(
        lines,
        (await Deno.readTextFile(join(CORPUS, "transition-unknown", "expected.txt"))).trimEnd().split("\n"),
      );
      assert.ok(lines.every((l) => !l.includes("\x1b[")), "no colour codes off a terminal");
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });

  await t.step("warnings alone exit 0 and are marked", async () => {
    const dir = await stageProject(join(CORPUS, "unreachable-task"));
    try {
      const { code, lines } = await capture(() => runValidate({ cwd: dir }));
      assert.equal(code, 0);
      assert.match(lines[0], /^workflow\.yaml:\d+:5: tasks\[1\]: warning: task "orphan" can never run/);
      assert.equal(lines[1], "project is valid (1 warning(s))");
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });

  await t.step(
    "a YAML syntax error is one message with a code frame (the lines around, a caret)",
    async () => {
      const dir = await stageProject(join(CORPUS, "yaml-indent-cascade"));
      try {
        const { code, lines } = await capture(() => runValidate({ cwd: dir }));
        assert.equal(code, 1);
        assert.deepEqual(lines, [
          "workflow.yaml:4:9: tasks[0]: YAML syntax error: Nested mappings are not allowed in compact mappings " +
          "(check the indentation of this line and the line above)",
          "  3 | tasks:",
          "> 4 |   - id: format",
          "    |         ^",
          "  5 |       use: tool(id=x)",
        ]);
      } finally {
        await Deno.remove(dir, { recursive: true });
      }
    },
  );

  await t.step("tool code: refused imports, syntax and type errors at their line and column", async () => {
    const dir = await Deno.makeTempDir({ prefix: "compozy-toolcode-" });
    const files: Record<string, string> = {
      "compozy.yaml": "name: p\nworkflows: [{ source: ./w.yaml }]\n",
      "w.yaml": `id: w
tools:
${
        ["npm", "remote", "outside", "syntax", "types", "good"].map((t) =>
          `  - { id: ${t}, execute: ./tools/${t}.ts }`
        ).join("\n")
      }
tasks:
  - { id: a, use: tool(id=good) }
`,
      "helper.ts": "export const x = 1;\n",
      "tools/npm.ts": 'import { z } from "npm:zod@3";\nexport default () => z;\n',
      "tools/remote.ts": '// a comment\nimport x from "https://example.com/x.ts";\nexport default () => x;\n',
      "tools/outside.ts": 'import { x } from "../helper.ts";\nexport default () => x;\n',
      "tools/syntax.ts": "export default (i: { n: number }) => {\n  return i.n +;\n};\n",
      "tools/types.ts": 'const n: number = "s";\nexport default () => n;\n',
      "tools/good.ts":
        'import { y } from "./lib/y.ts";\nexport default (i: { n: number }) => ({ n: i.n + y });\n',
      "tools/lib/y.ts": "export const y = 2;\n",
    };
    try {
      for (const [name, text] of Object.entries(files)) {
        await Deno.mkdir(join(dir, name, ".."), { recursive: true });
        await Deno.writeTextFile(join(dir, name), text);
      }
      const { code, lines } = await capture(() => runValidate({ cwd: dir }));
      assert.equal(code, 1);
      const byFile = Object.fromEntries(lines.map((line) => [line.split(":")[0], line]));
      assert.match(byFile["tools/npm.ts"], /^tools\/npm\.ts:1:20: .*tool_import_refused: import "npm:zod@3"/);
      assert.match(byFile["tools/remote.ts"], /^tools\/remote\.ts:2:16: .*"https:\/\/example\.com\/x\.ts"/);
      assert.match(
        byFile["tools/outside.ts"],
        /^tools\/outside\.ts:1:20: .*import "\.\.\/helper\.ts": refused/,
      );
      assert.match(byFile["tools/syntax.ts"], /^tools\/syntax\.ts:2:15: .*SyntaxError: Expression expected/);
      assert.match(
        byFile["tools/types.ts"],
        /^tools\/types\.ts:1:7: .*TS2322: Type 'string' is not assignable/,
      );
      assert.equal(byFile["tools/good.ts"], undefined, "a tool importing its own folder passes");
      assert.equal(lines.length, 5);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
});
