/**
 * A `script` MCP server may not use `node:sqlite` (issue 10, sbx2): SQLite opens its temp files itself, in
 * any folder `PRAGMA temp_store_directory` names, unseen by Deno's permission checks. A script granted
 * nothing learnt whether a folder it may not read exists and is writable (the pragma's answer), and its temp
 * tables could hold RAM in `/dev/shm`, past its resident memory ceiling. Tools were refused it already (red
 * team 6 S1); now a script's import is refused (`tool_import_refused`) and so is
 * `process.getBuiltinModule("node:sqlite")`. Real `deno run` of the script as the runtime starts one.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { scriptCommand } from "../../pkg/runtime/mcp/mcp_transport.ts";

Deno.test("a script server granted nothing cannot reach SQLite's temp store", async () => {
  const root = await Deno.makeTempDir({ prefix: "compozy-script-sqlite-" });
  const outside = await Deno.makeTempDir({ prefix: "compozy-script-sqlite-outside-" });
  try {
    await Deno.writeTextFile(join(root, "compozy.yaml"), "name: mcp\n");
    const script = join(root, "server.ts");
    const server = { id: "s", script, timeoutMs: 5_000, cwd: root };
    await Deno.writeTextFile(
      script,
      `let out: string;
       try {
         const { DatabaseSync } = process.getBuiltinModule("node:sqlite") as any;
         const db = new DatabaseSync(":memory:");
         db.exec("PRAGMA temp_store_directory = '${outside}'");
         out = JSON.stringify(db.prepare("PRAGMA temp_store_directory").all());
       } catch (e) {
         out = (e as Error).message;
       }
       console.log(JSON.stringify(out));`,
    );
    const { command, args } = await scriptCommand(server, script);
    const ran = await new Deno.Command(command, { args, cwd: root, stdout: "piped", stderr: "piped" })
      .output();
    const out = JSON.parse(new TextDecoder().decode(ran.stdout));
    // Before: [{"temp_store_directory":"<outside>"}], a folder the script has no grant on.
    assert.match(out, /node:sqlite is refused in a script server/);

    await Deno.writeTextFile(
      script,
      `import { DatabaseSync } from "node:sqlite";\nnew DatabaseSync(":memory:");\n`,
    );
    // Before: the command was given.
    await assert.rejects(scriptCommand(server, script), { code: "tool_import_refused" });
  } finally {
    await Deno.remove(root, { recursive: true });
    await Deno.remove(outside, { recursive: true });
  }
});
