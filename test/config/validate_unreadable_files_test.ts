/**
 * `compozy validate` on files it may not read (EACCES): the project file, a workflow file, the env file, a
 * tool module. Each is an error at its file or field with the system's reason, said once: Deno's message ends
 * with "readfile '<path>'", which the env file's and the workflow files' errors repeated after the path the
 * line already names. Real files of mode 000, `compozy validate` without the capabilities that let root read
 * them anyway.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { hasSetpriv, runCliWithoutDacOverride } from "../support/without_dac_override.ts";

Deno.test({
  name: "validate: a file it may not read is an error at its file or field, with the reason said once",
  ignore: !hasSetpriv(),
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "compozy-unreadable-files-" });
    const unreadable = ["other.yaml", "t.ts", ".env.local"].map((name) => join(dir, name));
    try {
      await Deno.writeTextFile(
        join(dir, "compozy.yaml"),
        "name: acc\nenv_file: .env.local\nworkflows:\n  - source: ./wf.yaml\n  - source: ./other.yaml\n",
      );
      const workflow = (id: string) =>
        `id: ${id}\ntools:\n  - id: t\n    execute: ./t.ts\ntasks:\n  - id: one\n    use: tool(id=t)\n    final: true\n`;
      await Deno.writeTextFile(join(dir, "wf.yaml"), workflow("wf"));
      await Deno.writeTextFile(join(dir, "other.yaml"), workflow("other"));
      await Deno.writeTextFile(join(dir, "t.ts"), "export default () => 1;\n");
      await Deno.writeTextFile(join(dir, ".env.local"), "A=1\n");
      for (const file of unreadable) await Deno.chmod(file, 0o000);
      const out = await runCliWithoutDacOverride(["validate", "--cwd", dir]);
      const text = (out.stdout + out.stderr).trim();
      assert.equal(out.code, 1, text);
      assert.deepEqual(text.split("\n"), [
        "compozy.yaml:2:11: env_file: cannot read the env file .env.local: Permission denied (os error 13)",
        "other.yaml:1:1: (root): cannot read the file: Permission denied (os error 13)",
        `t.ts:1:1: (tool module): tool_module_invalid: Import '${
          new URL(`file://${dir}/t.ts`).href
        }' failed: Permission denied (os error 13)`,
      ]);

      await Deno.chmod(join(dir, "compozy.yaml"), 0o000);
      const project = await runCliWithoutDacOverride(["validate", "--cwd", dir]);
      assert.equal(project.code, 1, project.stdout + project.stderr);
      assert.equal(
        (project.stdout + project.stderr).trim(),
        "compozy.yaml:1:1: (root): cannot read the file: Permission denied (os error 13)",
      );
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
