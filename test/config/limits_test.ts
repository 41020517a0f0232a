/**
 * Resource limits of the loader: files over 10 MB are refused unread, and an alias bomb is refused at once,
 * without being expanded.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { checkProject, formatDiagnostic } from "../../engine/domain/project/mod.ts";
import { DEFAULT_PROJECT } from "./stage.ts";

Deno.test("limits", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "compozy-limits-" });
  await Deno.writeTextFile(join(dir, "compozy.yaml"), DEFAULT_PROJECT);
  try {
    await t.step("a 50 MB workflow file is refused before it is read", async () => {
      // Built in memory and written at once: 51,200 awaited writes of a KiB, each a turn of the thread pool
      // that every test file of a --parallel run shares, took 9 s of the step in a full run (1 s alone).
      const chunk = new TextEncoder().encode(`# ${"x".repeat(1022)}\n`);
      const content = new Uint8Array(50 * 1024 * chunk.length);
      for (let at = 0; at < content.length; at += chunk.length) content.set(chunk, at);
      await Deno.writeFile(join(dir, "workflow.yaml"), content);
      const read = await readsDuring(() => checkProject(dir, { processEnv: {} }));
      const lines = read.result.map((d) => formatDiagnostic(d, dir));
      assert.deepEqual(lines, ["workflow.yaml:1:1: (root): file is 50.0 MB; files over 10 MB are refused"]);
      assert.ok(read.paths.some((p) => p.endsWith("compozy.yaml")), "reads are seen");
      assert.ok(!read.paths.some((p) => p.endsWith("workflow.yaml")), "the file must not be read");
    });

    await t.step("a 10-level billion-laughs bomb is refused at once, naming its aliases", async () => {
      const levels = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol","lol"]'];
      for (let i = 1; i < 10; i++) {
        const prev = String.fromCharCode(96 + i);
        const name = String.fromCharCode(97 + i);
        levels.push(`${name}: &${name} [${Array(10).fill(`*${prev}`).join(",")}]`);
      }
      await Deno.writeTextFile(join(dir, "workflow.yaml"), `id: w\n${levels.join("\n")}\ntasks: *j\n`);
      // 10^10 values: an expansion would never end (nor fit in memory), so an answer shows there was none.
      const [d, ...rest] = await checkProject(dir, { processEnv: {} });
      assert.equal(rest.length, 0);
      assert.equal(formatDiagnostic(d, dir).split(": (root): ")[0], "workflow.yaml:12:8");
      assert.match(
        d.message,
        /^aliases \*j, \*i, \*h, \*g, \*f, … \(10 aliases\) would expand to more than 100000 values/,
      );
    });

    await t.step("a file just under the alias limit loads", async () => {
      const items = Array(1_000).fill("*t").join(",");
      const text =
        `id: w\ntools: [&t { id: t, execute: ./t.ts }]\nx-list: [${items}]\ntasks: [{ id: a, use: tool(id=t) }]\n`;
      await Deno.writeTextFile(join(dir, "workflow.yaml"), text);
      await Deno.writeTextFile(join(dir, "t.ts"), "export default () => ({});\n");
      const lines = (await checkProject(dir, { processEnv: {} })).map((d) => formatDiagnostic(d, dir));
      // Only the unknown field is reported: 1 000 aliases of a small map are no bomb.
      assert.deepEqual(lines, ['workflow.yaml:3:1: x-list: unknown field "x-list"']);
    });

    await t.step("nesting: 64 levels load; 100 000 levels are refused at once, naming the spot", async () => {
      // `tasks`, the task list, the task, `outputs` and `v` are 4 levels, so the list adds 60.
      const nested = (n: number) => `${"[".repeat(n)}1${"]".repeat(n)}`;
      const workflow = (n: number) =>
        `id: w\ntasks:\n  - { id: a, type: aggregate, outputs: { v: ${nested(n)} } }\n`;
      await Deno.writeTextFile(join(dir, "workflow.yaml"), workflow(60));
      assert.deepEqual(await checkProject(dir, { processEnv: {} }), []);
      await Deno.writeTextFile(join(dir, "workflow.yaml"), workflow(61));
      const [deep] = (await checkProject(dir, { processEnv: {} })).map((d) => formatDiagnostic(d, dir));
      assert.equal(
        deep,
        "workflow.yaml:3:105: tasks[0].outputs.v[0][0]…: mappings and lists nest more than 64 levels deep here (a file may nest 64)",
      );
      // So deep that the YAML parser's own stack overflows: the same words, a short path.
      await Deno.writeTextFile(join(dir, "workflow.yaml"), workflow(100_000));
      const lines = (await checkProject(dir, { processEnv: {} })).map((d) => formatDiagnostic(d, dir));
      assert.equal(lines.length, 1);
      assert.match(
        lines[0],
        /^workflow\.yaml:3:\d+: tasks\[0\]\.outputs\.v\[0\]\[0\]…: mappings and lists nest more/,
      );
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

/** Runs `fn` and lists the files it read (or opened) through Deno's file API meanwhile. */
async function readsDuring<T>(fn: () => Promise<T>): Promise<{ result: T; paths: string[] }> {
  const paths: string[] = [];
  const methods = [
    "readFile",
    "readTextFile",
    "open",
    "readFileSync",
    "readTextFileSync",
    "openSync",
  ] as const;
  const originals = methods.map((name) => [name, Deno[name]] as const);
  const spied = Deno as unknown as Record<string, (path: string | URL, ...rest: unknown[]) => unknown>;
  for (const [name, original] of originals) {
    spied[name] = (path, ...rest) => {
      paths.push(String(path));
      return (original as (...args: unknown[]) => unknown)(path, ...rest);
    };
  }
  try {
    return { result: await fn(), paths };
  } finally {
    for (const [name, original] of originals) spied[name] = original as never;
  }
}
