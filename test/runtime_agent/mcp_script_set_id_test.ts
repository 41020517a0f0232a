/**
 * A `script` MCP server that may write gets the set-ID mode filter a tool's sandbox gets (kernel_limits.ts):
 * before, such a server made setuid files with `Deno.chmod`, a `mode` option or Node's `chmod`, and the
 * runtime may run as root (outside break attempt brk33, the gap rt33 left). Its `ffi` grant on the C library,
 * which installs the filter, is gone before the script's own code runs. Real script server processes.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { scriptCommand } from "../../pkg/runtime/mcp/mcp_transport.ts";
import { kernelLimitsLibrary } from "../../pkg/runtime/kernel_limits.ts";

const PLANTER = (out: string, libc: string) => `
import * as fs from "node:fs";
const at = (name) => ${JSON.stringify(out)} + "/" + name;
const attempts = {
  "Deno.chmodSync": () => (Deno.writeTextFileSync(at("a"), "x"), Deno.chmodSync(at("a"), 0o4755)),
  "Deno.writeFileSync mode": () => Deno.writeFileSync(at("b"), new Uint8Array([1]), { mode: 0o6755 }),
  "node chmodSync (setgid)": () => (fs.writeFileSync(at("c"), "x"), fs.chmodSync(at("c"), 0o2755)),
  "Deno.dlopen of the C library": () => Deno.dlopen(${JSON.stringify(libc)}, {}).close(),
};
for (const [name, attempt] of Object.entries(attempts)) {
  try {
    attempt();
    console.log(name + ": done");
  } catch (e) {
    console.log(name + ": " + e.name);
  }
}
// Other modes still pass.
Deno.writeTextFileSync(at("plain"), "x");
Deno.chmodSync(at("plain"), 0o1755);
`;

Deno.test("brk33: a script MCP server that may write cannot make set-user-ID or set-group-ID files", async () => {
  const libc = kernelLimitsLibrary();
  assert.ok(libc, "the runtime's C library (the filter is Linux-only)");
  const dir = await Deno.makeTempDir({ prefix: "compozy-mcp-set-id-" });
  try {
    Deno.writeTextFileSync(join(dir, "compozy.yaml"), "name: mcp\n");
    const out = join(dir, "out");
    Deno.mkdirSync(out);
    const script = join(dir, "server.js");
    Deno.writeTextFileSync(script, PLANTER(out, libc));
    const server = { id: "s", script, timeoutMs: 5_000, cwd: dir, permissions: { write: ["out"] } };
    const { command, args } = await scriptCommand(server, script);
    const ran = await new Deno.Command(command, { args, cwd: dir, stdout: "piped", stderr: "piped" })
      .output();
    const lines = new TextDecoder().decode(ran.stdout).trim().split("\n");
    assert.ok(ran.success, new TextDecoder().decode(ran.stderr));
    assert.deepEqual(lines, [
      "Deno.chmodSync: PermissionDenied",
      "Deno.writeFileSync mode: PermissionDenied",
      "node chmodSync (setgid): Error",
      "Deno.dlopen of the C library: NotCapable",
    ]);
    assert.equal(Deno.statSync(join(out, "plain")).mode! & 0o7777, 0o1755);
    const planted = [...Deno.readDirSync(out)].filter((e) =>
      (Deno.statSync(join(out, e.name)).mode! & 0o6000) !== 0
    );
    assert.deepEqual(planted.map((e) => e.name), []);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("brk33: a script MCP server that may not write gets no ffi at all", async () => {
  const dir = await Deno.makeTempDir({ prefix: "compozy-mcp-set-id-" });
  try {
    Deno.writeTextFileSync(join(dir, "compozy.yaml"), "name: mcp\n");
    const script = join(dir, "server.js");
    Deno.writeTextFileSync(script, "");
    const { args } = await scriptCommand({ id: "s", script, timeoutMs: 5_000, cwd: dir }, script);
    assert.ok(args.includes("--deny-ffi"), args.join(" "));
    assert.ok(!args.some((a) => a.startsWith("--allow-ffi")), args.join(" "));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
