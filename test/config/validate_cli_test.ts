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

Deno.test("red team 8 S1: validate and build print a tool module's own text escaped, never raw", async () => {
  // A tool's code is an attacker's: an import attribute and a bare specifier written with ESC, BEL and CR set
  // the window title and overwrote the error line (with a forged "project is valid") in validate's output.
  const dir = await Deno.makeTempDir({ prefix: "compozy-validate-esc-" });
  try {
    await Deno.mkdir(join(dir, "tools"));
    await Deno.writeTextFile(join(dir, "compozy.yaml"), "name: esc\nworkflows:\n  - source: ./w.yaml\n");
    await Deno.writeTextFile(
      join(dir, "w.yaml"),
      "id: w\ntools:\n  - { id: attr, execute: ./tools/attr.ts }\n  - { id: bare, execute: ./tools/bare.ts }\n" +
        "tasks:\n  - { id: a, use: tool(id=attr) }\n",
    );
    await Deno.writeTextFile(join(dir, "tools/d.json"), "{}");
    await Deno.writeTextFile(
      join(dir, "tools/attr.ts"),
      String.raw`import x from "./d.json" with { type: "\x1b]0;T2\x07\x1b[2K\rproject is valid" };` +
        "\nexport default () => x;\n",
    );
    await Deno.writeTextFile(
      join(dir, "tools/bare.ts"),
      String.raw`import x from "\x1b]0;T5\x07\x1b[2K\rFAKE5";` + "\nexport default () => x;\n",
    );
    const { code, lines } = await capture(() => runValidate({ cwd: dir }));
    assert.equal(code, 1, lines.join("\n"));
    const text = lines.join("\n");
    // deno-lint-ignore no-control-regex
    assert.doesNotMatch(text, /[\x1b\x07\r]/, JSON.stringify(lines));
    assert.ok(text.includes(String.raw`\x1b]0;T2\x07\x1b[2K\rproject is valid`), text);
    assert.ok(text.includes(String.raw`\x1b]0;T5\x07`), text);
    // build, dev and start print a ConfigError's diagnostics through formatDiagnostics.
    const { formatDiagnostics } = await import("../../cli/diagnostics_output.ts");
    const printed = formatDiagnostics(
      [{
        severity: "error",
        file: join(dir, "tools/bare.ts"),
        line: 1,
        col: 1,
        path: "(tool module)",
        message: "a\x1b]52;c;eA==\x07\rb\nnext",
      }],
      dir,
      { red: (s: string) => s, yellow: (s: string) => s, dim: (s: string) => s } as never,
    );
    assert.deepEqual(printed, [
      String.raw`tools/bare.ts:1:1: (tool module): a\x1b]52;c;eA==\x07\rb` + "\nnext",
    ]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("red team 8 S1b: validate prints an MCP script server's stderr escaped in its warning", async () => {
  const dir = await Deno.makeTempDir({ prefix: "compozy-validate-mcp-esc-" });
  try {
    await Deno.mkdir(join(dir, "mcp"));
    await Deno.writeTextFile(
      join(dir, "compozy.yaml"),
      "name: esc\nworkflows: []\nmcp:\n  - id: orders\n    script: ./mcp/orders.ts\n",
    );
    await Deno.writeTextFile(
      join(dir, "mcp/orders.ts"),
      String.raw`console.error("boom\x1b]0;MCP-TITLE\x07\x1b[2K\rFAKE: project is valid");` +
        "\nDeno.exit(3);\n",
    );
    const { lines } = await capture(() => runValidate({ cwd: dir }));
    const text = lines.join("\n");
    assert.ok(text.includes(String.raw`its stderr: boom\x1b]0;MCP-TITLE\x07\x1b[2K\rFAKE`), text);
    // deno-lint-ignore no-control-regex
    assert.doesNotMatch(text, /[\x1b\x07\r]/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
