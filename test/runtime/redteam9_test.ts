/**
 * Outside break attempts of the sandbox (2026-12-04, /work/wt/findings/brk-sbx.md and breaker2.md), with real
 * sandbox processes: each hole as it was reproduced, and what the runtime does now.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { configureProtectedFiles } from "../../pkg/runtime/grant_paths.ts";
import { ToolRunner } from "../../pkg/runtime/tool_runner.ts";
import { call, ToolDir } from "./_helpers.ts";

const READER = `export default (input: { path: string }) => {
  try {
    return Deno.readTextFileSync(input.path);
  } catch (e) {
    return (e as Error).name;
  }
};`;

Deno.test("break H2: the NATS credentials file the runtime connects with is never granted", async (t) => {
  const dir = new ToolDir();
  const credsDir = await Deno.makeTempDir({ prefix: "compozy-creds-" });
  const creds = join(credsDir, "engine.creds");
  await Deno.writeTextFile(creds, "-----BEGIN NATS USER JWT----- and its seed\n");
  // As runtimeMain does with its NATS_CREDS.
  configureProtectedFiles([creds]);
  const runner = new ToolRunner({ maxWarmPerKey: 1 });
  try {
    const tool = dir.tool("reader", READER);
    await t.step("read: true gets it denied (the seed was returned)", async () => {
      const result = await runner.run(
        call(tool, { path: creds }, { permissions: { read: true }, timeoutMs: 30_000 }),
      );
      assert.deepEqual(result.ok && result.output, "NotCapable", JSON.stringify(result));
    });
    await t.step("a read list covering it is refused before the tool runs", async () => {
      const result = await runner.run(
        call(tool, { path: creds }, { permissions: { read: [credsDir] }, timeoutMs: 30_000 }),
      );
      assert.ok(!result.ok, JSON.stringify(result));
      assert.equal(result.failure.code, "tool_permission_denied");
      assert.match(result.failure.message, /engine\.creds/);
    });
  } finally {
    configureProtectedFiles([]);
    await runner.close();
    dir.cleanup();
    await Deno.remove(credsDir, { recursive: true });
  }
});

Deno.test("break H4: read: true with write: true is refused (Deno lets both create symlinks past --deny-read)", async () => {
  const dir = new ToolDir();
  const project = await Deno.makeTempDir({ prefix: "compozy-h4-" });
  await Deno.writeTextFile(join(project, "compozy.yaml"), "name: h4\n");
  await Deno.writeTextFile(join(project, ".env"), "OPENAI_API_KEY=sk-secret\n");
  const runner = new ToolRunner({ maxWarmPerKey: 1 });
  try {
    const tool = join(project, "linker.ts");
    await Deno.writeTextFile(
      tool,
      `export default () => {
        const link = ${JSON.stringify(join(project, "lnk"))};
        Deno.symlinkSync(${JSON.stringify(join(project, ".env"))}, link);
        return Deno.readTextFileSync(link);
      };`,
    );
    const result = await runner.run(
      call(tool, {}, { permissions: { read: true, write: true }, timeoutMs: 30_000 }),
    );
    assert.ok(!result.ok, `the tool ran: ${JSON.stringify(result)}`);
    assert.equal(result.failure.code, "tool_permission_denied");
    assert.match(result.failure.message, /symlinks/);
    await assert.rejects(Deno.lstat(join(project, "lnk")), Deno.errors.NotFound);
  } finally {
    await runner.close();
    dir.cleanup();
    await Deno.remove(project, { recursive: true });
  }
});

Deno.test("break side finding: .tsx and .jsx tools load (deno info spells their media types TSX and JSX)", async () => {
  const dir = new ToolDir();
  const runner = new ToolRunner({ maxWarmPerKey: 1 });
  try {
    // A .jsx module is JavaScript: no type annotation.
    const sources = {
      "typed.tsx": "export default (input: unknown) => ({ echoed: input });\n",
      "plain.jsx": "export default (input) => ({ echoed: input });\n",
    };
    for (const [name, source] of Object.entries(sources)) {
      const tool = join(dir.path, name);
      await Deno.writeTextFile(tool, source);
      const result = await runner.run(call(tool, { n: 1 }, { timeoutMs: 30_000 }));
      assert.deepEqual(
        result.ok && result.output,
        { echoed: { n: 1 } },
        `${name}: ${JSON.stringify(result)}`,
      );
    }
  } finally {
    await runner.close();
    dir.cleanup();
  }
});

/**
 * `a <T>` then `/import(y)/g` on the next line: a regular expression to a JavaScript parser, a computed
 * `import(y)` to TypeScript (`a<T> / import(y) / g`). Valid JavaScript throughout (no annotation), so that a
 * JavaScript parse of it finds nothing to refuse.
 */
const HIDER = `const a = 1, T = 2, g = 3;
const y = ["data:text/javascript,", "globalThis.hidden = 42;"].join("");
const p = a <T>
/import(y)/g;
export const hidden = async () => { await p; return globalThis.hidden; };
`;

Deno.test("breaker2 D1: a module with no extension is scanned as the TypeScript Deno runs it as", async (t) => {
  const dir = new ToolDir();
  const runner = new ToolRunner({ maxWarmPerKey: 1 });
  const refusedAt = (result: Awaited<ReturnType<ToolRunner["run"]>>, file: string) => {
    assert.ok(!result.ok, `the tool with a hidden computed import ran: ${JSON.stringify(result)}`);
    assert.equal(result.failure.code, "tool_import_refused", result.failure.message);
    assert.match(result.failure.message, new RegExp(`${file}:\\d+:\\d+`));
  };
  try {
    await t.step("imported by a .ts tool (a data: URL built at run time ran)", async () => {
      await Deno.mkdir(join(dir.path, "a/lib"), { recursive: true });
      await Deno.writeTextFile(join(dir.path, "a/lib/hider"), HIDER);
      const tool = join(dir.path, "a/tool.ts");
      await Deno.writeTextFile(
        tool,
        `import { hidden } from "./lib/hider";\nexport default () => hidden();\n`,
      );
      refusedAt(await runner.run(call(tool, {}, { timeoutMs: 30_000 })), "hider");
    });
    await t.step("a .tsx tool's @jsxImportSource (its jsx-runtime module has no extension)", async () => {
      await Deno.mkdir(join(dir.path, "b/lib"), { recursive: true });
      await Deno.writeTextFile(
        join(dir.path, "b/lib/jsx-runtime"),
        HIDER +
          "export function jsx(t) { return t; }\nexport const jsxs = jsx;\nexport const Fragment = 'F';\n",
      );
      const tool = join(dir.path, "b/tool.tsx");
      await Deno.writeTextFile(
        tool,
        `/** @jsxImportSource ./lib */\nimport { hidden } from "./lib/jsx-runtime";\nexport default async () => [<div />, await hidden()];\n`,
      );
      refusedAt(await runner.run(call(tool, {}, { timeoutMs: 30_000 })), "jsx-runtime");
    });
  } finally {
    await runner.close();
    dir.cleanup();
  }
});
