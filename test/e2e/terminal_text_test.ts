/**
 * Text a tool controls never reaches a terminal raw (red team 7, R4/R4b): a tool that logs and throws terminal
 * escape sequences (erase line, cursor up, CR, a window title, an OSC 52 clipboard write) against a real
 * `compozy dev`. Its live log, `run --wait`, `executions show` and `executions logs` print them escaped
 * (`\x1b`, `\r`, `\x07`), one record per line; `--json` output keeps them byte for byte.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { runCli, startDev } from "./support/dev_server.ts";

/** What an attacker writes: erase this line and the one above, a forged success, a title, the clipboard. */
const FORGED = "ok\r\x1b[2K\x1b[1A\x1b[2K17:05:00.000 pay …c0ffee00 ✓ SUCCESS: payment approved\n" +
  "forged\x1b]0;PWNED-TITLE\x07\x1b]52;c;cm0gLXJmIH4K\x07\x9b2J";

/** Any byte a terminal would act on: ESC, BEL, CR, the 8-bit CSI. */
// deno-lint-ignore no-control-regex
const RAW_CONTROL = /[\x1b\x07\r\x9b]/;

Deno.test({
  name: "a tool's escape sequences reach no terminal raw: dev live log, run --wait, executions show/logs",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async (t) => {
    const dir = await Deno.makeTempDir({ prefix: "compozy-e2e-esc-" });
    await Deno.mkdir(join(dir, "tools"));
    await Deno.writeTextFile(
      join(dir, "compozy.yaml"),
      "name: esc\nversion: 0.1.0\nworkflows:\n  - source: ./esc.yaml\n",
    );
    await Deno.writeTextFile(
      join(dir, "esc.yaml"),
      "id: esc\ntools:\n  - { id: esc, execute: ./tools/esc.ts }\ntasks:\n  - { id: boom, use: tool(id=esc), final: true }\n",
    );
    await Deno.writeTextFile(
      join(dir, "tools/esc.ts"),
      `const forged = ${JSON.stringify(FORGED)};\n` +
        "export default () => {\n  console.log(forged);\n  throw new Error(forged);\n};\n",
    );
    const dev = await startDev({ dir, env: { COMPOZY_LOG_LEVEL: "info" } });
    const cli = (...args: string[]) => runCli([...args, "--server", dev.url]);
    try {
      let execId = "";
      await t.step("run --wait: the failure line shows the escapes as text", async () => {
        const run = await cli("run", "esc", "--wait");
        assert.equal(run.code, 1, run.stderr);
        execId = run.stdout.trim().split("\n").find((l) => /^FAILED in /.test(l))!.split(/\s+/).at(-1)!;
        assert.doesNotMatch(run.stdout + run.stderr, RAW_CONTROL);
        assert.ok(run.stdout.includes(String.raw`ok\r\x1b[2K\x1b[1A\x1b[2K17:05:00.000 pay`), run.stdout);
        assert.ok(run.stdout.includes(String.raw`\x1b]52;c;cm0gLXJmIH4K\x07\x9b2J`), run.stdout);
        // The forged "success" stays inside the failure's line instead of starting one of its own.
        assert.ok(!run.stdout.split("\n").some((l) => l.startsWith("forged")), run.stdout);
      });

      await t.step("the dev live log shows the failure escaped", async () => {
        await dev.waitForLine(/↳ tool esc ✗ tool_threw: .*\\x1b\]52;c;cm0gLXJmIH4K\\x07/);
        // The runtime's JSON log lines (stdout is no terminal here) are for machines: JSON escapes C0 there.
        assert.doesNotMatch(dev.lines.filter((l) => !l.startsWith("{")).join("\n"), RAW_CONTROL);
      });

      await t.step("executions show: escaped; --json: byte for byte", async () => {
        const show = await cli("executions", "show", execId);
        assert.equal(show.code, 0, show.stderr);
        assert.doesNotMatch(show.stdout, RAW_CONTROL);
        assert.match(show.stdout, /error {3}tool_threw: .*\\x1b\[1A/);
        const json = await cli("executions", "show", execId, "--json");
        assert.ok(JSON.parse(json.stdout).error.message.endsWith(FORGED), json.stdout);
      });

      await t.step("executions logs: the console line escaped, one line; --json: byte for byte", async () => {
        const logs = await cli("executions", "logs", execId);
        assert.equal(logs.code, 0, logs.stderr);
        assert.doesNotMatch(logs.stdout, RAW_CONTROL);
        const line = logs.stdout.split("\n").find((l) => l.includes("compozy.tool"));
        assert.ok(
          line?.endsWith(String.raw`\x1b]0;PWNED-TITLE\x07\x1b]52;c;cm0gLXJmIH4K\x07\x9b2J`),
          logs.stdout,
        );
        const json = await cli("executions", "logs", execId, "--json");
        const records = json.stdout.trim().split("\n").map((l) => JSON.parse(l));
        assert.ok(records.some((r) => r.message === FORGED), json.stdout);
      });
    } finally {
      await dev.stop();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
