/**
 * `deno task compile --help` and `deno task bench --help` print their usage and exit 0, doing nothing else;
 * a bad option stays an error naming it (outside review api35: compile threw "Unknown option '--help'" with
 * a stack, bench said "Unknown benchmark '--help'", exit 2).
 */
import assert from "node:assert/strict";

const root = new URL("../", import.meta.url).pathname;

async function task(...args: string[]) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["task", "--quiet", ...args],
    cwd: root,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
  return { code: out.code, stdout: text(out.stdout), stderr: text(out.stderr) };
}

Deno.test("deno task compile --help prints the usage, compiles nothing; a bad option is named, exit 2", async () => {
  const help = await task("compile", "--help");
  assert.equal(help.code, 0, help.stderr);
  assert.match(help.stdout, /Usage: deno task compile \[--output PATH\]/);
  const bad = await task("compile", "--bogus");
  assert.equal(bad.code, 2, bad.stdout + bad.stderr);
  assert.match(bad.stderr, /--bogus/);
  assert.ok(!bad.stderr.includes("    at "), `a stack trace: ${bad.stderr}`);
});

Deno.test("deno task bench --help lists the benchmarks, runs none", async () => {
  const help = await task("bench", "--help");
  assert.equal(help.code, 0, help.stderr);
  assert.match(help.stdout, /Usage: deno task bench/);
  for (const name of ["nats", "engine", "api"]) assert.match(help.stdout, new RegExp(`^  ${name} `, "m"));
  assert.ok(!help.stdout.includes("bench/"), `a benchmark ran: ${help.stdout}`);
  const bad = await task("bench", "bogus");
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /Unknown benchmark 'bogus'/);
});
