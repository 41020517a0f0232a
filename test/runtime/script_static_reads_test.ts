/**
 * An MCP script's static imports are read without a permission check (Deno loads a main module's static
 * graph so): a script granted nothing read any `.json` file on the host by a JSON import (a cloud
 * credentials file, `~/.docker/config.json`) and the constants of any module, while `Deno.readTextFile` of
 * the same file was refused (outside break attempt brk-sbx3 G6). Its graph may now come only from its folder,
 * its project and its `read` grants. Real `deno info`, real script processes.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { scriptCommand } from "../../pkg/runtime/mcp/mcp_transport.ts";

async function run(server: Parameters<typeof scriptCommand>[0], cwd: string): Promise<string> {
  const { command, args } = await scriptCommand(server, server.script!);
  const out = await new Deno.Command(command, { args, cwd, stdout: "piped", stderr: "piped" }).output();
  return new TextDecoder().decode(out.stdout).trim();
}

Deno.test("break G6: a script's static imports stay within its folder, project and read grants", async (t) => {
  const root = await Deno.makeTempDir({ prefix: "compozy-g6-" });
  const elsewhere = await Deno.makeTempDir({ prefix: "compozy-g6-elsewhere-" });
  try {
    await Deno.writeTextFile(join(root, "compozy.yaml"), "name: g6\n");
    await Deno.mkdir(join(root, "mcp"));
    await Deno.mkdir(join(root, "lib"));
    await Deno.writeTextFile(join(root, "lib", "shared.ts"), `export const shared = "project code";\n`);
    await Deno.writeTextFile(join(elsewhere, "adc.json"), `{ "private_key": "g6-private-key" }\n`);
    await Deno.writeTextFile(join(elsewhere, "config.ts"), `export const TOKEN = "g6-token";\n`);
    const script = join(root, "mcp", "server.ts");
    const server = { id: "s", script, timeoutMs: 5_000, cwd: root };

    for (
      const [what, imports] of [
        ["a JSON file elsewhere", `import data from "${join(elsewhere, "adc.json")}" with { type: "json" };`],
        ["a module elsewhere", `import * as data from "${join(elsewhere, "config.ts")}";`],
      ]
    ) {
      await t.step(`${what}, with no read grant, is refused`, async () => {
        await Deno.writeTextFile(script, `${imports}\nconsole.log(JSON.stringify(data));\n`);
        // Before: accepted, and the script printed {"private_key":"g6-private-key"} / {"TOKEN":"g6-token"}.
        await assert.rejects(run(server, root), (e: { code?: string; message: string }) => {
          assert.equal(e.code, "tool_import_refused", e.message);
          assert.match(e.message, /outside the script's folder, its project and its read grants/);
          return true;
        });
      });
    }
    await t.step("a JSON file a read grant covers is imported", async () => {
      await Deno.writeTextFile(
        script,
        `import data from "${
          join(elsewhere, "adc.json")
        }" with { type: "json" };\nconsole.log(data.private_key);\n`,
      );
      assert.equal(await run({ ...server, permissions: { read: [elsewhere] } }, root), "g6-private-key");
    });
    await t.step("the project's own code is imported", async () => {
      await Deno.writeTextFile(script, `import { shared } from "../lib/shared.ts";\nconsole.log(shared);\n`);
      assert.equal(await run(server, root), "project code");
    });
  } finally {
    await Deno.remove(root, { recursive: true });
    await Deno.remove(elsewhere, { recursive: true });
  }
});
