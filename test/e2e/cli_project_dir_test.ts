/**
 * `compozy validate` and `compozy dev` on a `--cwd` that is no project folder. A file, or a path through one,
 * ended both with "internal error: Not a directory (os error 20)" and a stack (exit 2); a `compozy.yaml` that
 * is a folder was "project file not found"; a folder that does not exist was "no compozy.yaml in" it. Each
 * is now said for what it is, with the ways out. Real CLI runs.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { runCli } from "./support/dev_server.ts";

Deno.test("validate and dev say what is wrong with a --cwd that is no project folder", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "compozy-project-dir-" });
  try {
    await Deno.writeTextFile(join(dir, "notes.txt"), "not a project\n");
    await Deno.mkdir(join(dir, "odd/compozy.yaml"), { recursive: true });
    const cases = [
      ["a file", join(dir, "notes.txt"), `${dir}/notes.txt is a file, not a project folder`],
      [
        "a path through a file",
        join(dir, "notes.txt/project"),
        `cannot open ${dir}/notes.txt/project: Not a directory (os error 20)`,
      ],
      ["a folder that does not exist", join(dir, "missing"), `${dir}/missing does not exist`],
      [
        "a compozy.yaml that is a folder",
        join(dir, "odd"),
        `compozy.yaml in ${dir}/odd is a folder, not a file`,
      ],
    ] as const;
    for (const [what, cwd, said] of cases) {
      await t.step(what, async () => {
        for (const command of ["validate", "dev"]) {
          const res = await runCli([command, "--cwd", cwd, ...(command === "dev" ? ["--port", "0"] : [])]);
          const out = `${command}: ${res.stdout}${res.stderr}`;
          assert.equal(res.code, 1, out);
          assert.equal(res.stderr.split("\n")[0], `error: ${said}`, out);
          assert.match(res.stderr, /--cwd <dir>/, out);
        }
      });
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
