/**
 * A `script` MCP server gets the kernel limits a tool's sandbox gets (kernel_limits.ts, issue 10, sbx34):
 * granted `net: true` it reaches no abstract unix socket (Deno checks `path: "\0name"` as `net`, so before it
 * connected to any of the runtime's network namespace), and one that may write is bounded per file
 * (`RLIMIT_FSIZE`, by default 256 MiB: a write at that offset fails "File too large", without writing it).
 * Real script server processes, from the command the runtime starts them with.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { DEFAULT_MAX_FILE_BYTES } from "../../pkg/runtime/kernel_limits.ts";
import { scriptCommand } from "../../pkg/runtime/mcp/mcp_transport.ts";

const PROBE = (abstract: string, out: string | undefined) => `
import * as net from "node:net";
const outcomes = [];
if (${JSON.stringify(out)} === undefined) {
try {
  (await Deno.connect({ transport: "unix", path: ${JSON.stringify(abstract)} })).close();
  outcomes.push("Deno.connect: connected");
} catch (e) {
  outcomes.push("Deno.connect: " + e.name);
}
outcomes.push("node net.connect: " + await new Promise((resolve) => {
  const socket = net.connect(${JSON.stringify(abstract)}, () => (socket.destroy(), resolve("connected")));
  socket.on("error", (e) => resolve(e.code));
}));
}
if (${JSON.stringify(out)} !== undefined) {
  using file = Deno.openSync(${JSON.stringify(out)} + "/sparse", { write: true, create: true });
  file.seekSync(${DEFAULT_MAX_FILE_BYTES}, Deno.SeekMode.Start);
  try {
    file.writeSync(new Uint8Array(1));
    outcomes.push("write past the bound: done");
  } catch (e) {
    outcomes.push("write past the bound: " + e.message.split(":")[0]);
  }
}
console.log(outcomes.join("\\n"));
`;

async function runScript(permissions: Record<string, unknown>, write: boolean): Promise<string[]> {
  const dir = await Deno.makeTempDir({ prefix: "compozy-mcp-kernel-" });
  const path = `\0compozy-sbx34-mcp-${crypto.randomUUID()}`;
  const listener = Deno.listen({ transport: "unix", path });
  let accepted = 0;
  const served = (async () => {
    for await (const conn of listener) {
      accepted++;
      conn.close();
    }
  })();
  try {
    Deno.writeTextFileSync(join(dir, "compozy.yaml"), "name: mcp\n");
    const out = join(dir, "out");
    Deno.mkdirSync(out);
    const script = join(dir, "server.js");
    Deno.writeTextFileSync(script, PROBE(path, write ? out : undefined));
    const server = { id: "s", script, timeoutMs: 5_000, cwd: dir, permissions };
    const { command, args } = await scriptCommand(server, script);
    const ran = await new Deno.Command(command, { args, cwd: dir, stdout: "piped", stderr: "piped" })
      .output();
    assert.ok(ran.success, new TextDecoder().decode(ran.stderr));
    if (write) assert.ok(Deno.statSync(join(out, "sparse")).size <= DEFAULT_MAX_FILE_BYTES);
    return [...new TextDecoder().decode(ran.stdout).trim().split("\n"), `accepted: ${accepted}`];
  } finally {
    listener.close();
    await served;
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("sbx34: a script MCP server granted net: true reaches no abstract unix socket", async () => {
  assert.deepEqual(await runScript({ net: true }, false), [
    "Deno.connect: PermissionDenied",
    "node net.connect: EACCES",
    "accepted: 0",
  ]);
});

Deno.test("sbx34: a script MCP server that may write is bounded per file, by default 256 MiB", async () => {
  assert.deepEqual(await runScript({ write: ["out"] }, true), [
    "write past the bound: File too large (os error 27)",
    "accepted: 0",
  ]);
});
