/** `deno task fuzz-engine` as a user types it: `--help` prints the options, a bad option names itself. */
import assert from "node:assert/strict";

const root = new URL("../../../", import.meta.url).pathname;

async function fuzzEngine(...args: string[]) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["task", "--quiet", "fuzz-engine", ...args],
    cwd: root,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
  return { code: out.code, stdout: text(out.stdout), stderr: text(out.stderr) };
}

Deno.test("fuzz-engine --help prints every option and exits 0, running no case", async () => {
  for (const flag of ["--help", "-h"]) {
    const { code, stdout, stderr } = await fuzzEngine(flag);
    assert.equal(code, 0, `${flag}: ${stderr}`);
    for (
      const option of [
        "--cases",
        "--seed",
        "--features",
        "--batch",
        "--concurrency",
        "--crashes",
        "--engines",
      ]
    ) {
      assert.ok(stdout.includes(option), `${flag}: ${option} missing from ${stdout}`);
    }
    assert.ok(!stdout.includes("cases from seed"), stdout);
  }
});

Deno.test("fuzz-engine refuses an unknown option or a bad number, naming it, with exit 2", async () => {
  const cases: [string[], string][] = [
    [["--bogus"], "--bogus"],
    [["--cases", "abc"], "--cases"],
    [["--batch", "0"], "--batch"],
    [["--seed", "1e3"], "--seed"],
    [["--engines", "0"], "--engines"],
    [["--engines", "5"], "--engines"],
    [["--freezes"], "--freezes"],
  ];
  for (const [args, named] of cases) {
    const { code, stdout, stderr } = await fuzzEngine(...args);
    assert.equal(code, 2, `${args.join(" ")}: ${stdout}${stderr}`);
    assert.ok(stderr.includes(named), `${args.join(" ")}: ${stderr}`);
    assert.ok(!stderr.includes("    at "), `a stack trace: ${stderr}`);
    assert.ok(!stdout.includes("cases from seed"), stdout);
  }
});
