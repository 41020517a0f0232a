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
});
