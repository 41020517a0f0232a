/**
 * `compozy validate` on a workflow of 20,000 tasks in a row (a 1.3 MB file, well under the 10 MB a file may
 * have). The flow check recursed once per step, and at some 8,000 steps ended with "internal error: Maximum
 * call stack size exceeded"; the template check then kept, for every task, the set of tasks before it: n²
 * entries, 1.1 GB at 8,000 tasks, and at 20,000 "Fatal JavaScript out of memory" after 215 s (4.4 GB). Run
 * with a 256 MB heap, which the check fits in now. Real CLI.
 */
import assert from "node:assert/strict";
import { join, resolve } from "node:path";
import { COMPOZY_DENO_RUN_FLAGS } from "../support/deno_run.ts";

const MAIN = resolve(import.meta.dirname!, "../../main.ts");

Deno.test("validate: a workflow of 20,000 tasks in a row is checked within a 256 MB heap", async () => {
  const dir = await Deno.makeTempDir({ prefix: "compozy-long-workflow-" });
  try {
    const count = 20_000;
    const tasks = Array.from(
      { length: count },
      (_, i) => `  - id: t${i}\n    type: wait\n    signal: go${i}\n    timeout: 1h\n`,
    );
    await Deno.writeTextFile(join(dir, "compozy.yaml"), "name: long\nworkflows:\n  - source: ./wf.yaml\n");
    await Deno.writeTextFile(join(dir, "wf.yaml"), `id: wf\ntasks:\n${tasks.join("")}    final: true\n`);
    const out = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        ...COMPOZY_DENO_RUN_FLAGS,
        "--v8-flags=--max-old-space-size=256",
        MAIN,
        "validate",
        "--cwd",
        dir,
      ],
      env: { NO_COLOR: "1", COMPOZY_LOG_LEVEL: "warn" },
      stdin: "null",
    }).output();
    const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
    assert.equal(out.code, 0, text.slice(0, 2_000));
    assert.match(text, /project is valid/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
