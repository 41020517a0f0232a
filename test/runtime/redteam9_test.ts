/**
 * An outside break attempt of the sandbox (2026-12-04, /work/wt/findings/brk-sbx.md), with real sandbox
 * processes: each hole as it was reproduced, and what the runtime does now. H1, H3 and H5 are in their own
 * tests (fd and socket bounds, the restore of globals).
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
