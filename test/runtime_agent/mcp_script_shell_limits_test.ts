/**
 * A `script` MCP server starts under the limits of a tool's sandbox process (outside break attempt brk36):
 * through the shell line that lowers its descriptor limit and sets its core size to 0 (descriptor_limit.ts),
 * and with file watching refused, as in a tool's worker. Before, it was started as `deno` directly: it kept
 * the runtime's descriptor and core limits (a core of its memory, its env values, could be written in its
 * working folder, the project's) and could hold inotify watches of the host user without bound. Real script
 * server processes, from the command the runtime starts them with.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { scriptCommand } from "../../pkg/runtime/mcp/mcp_transport.ts";
import { DEFAULT_MAX_DESCRIPTORS } from "../../pkg/runtime/descriptor_limit.ts";

/** Watches its folder with Deno and Node, says how each went, then waits for stdin to end. */
const PROBE = (dir: string) => `
import fs from "node:fs";
const outcomes = [];
try {
  const watcher = Deno.watchFs(${JSON.stringify(dir)});
  watcher.close();
  outcomes.push("Deno.watchFs: watching");
} catch (e) {
  outcomes.push("Deno.watchFs: " + e.name);
}
outcomes.push("node fs.watch: " + await new Promise((resolve) => {
  try {
    const watcher = fs.watch(${JSON.stringify(dir)});
    watcher.on("error", (e) => resolve(e.name));
    setTimeout(() => (watcher.close(), resolve("watching")), 200);
  } catch (e) {
    resolve(e.name);
  }
}));
console.log(JSON.stringify({ pid: Deno.pid, outcomes }));
for await (const _ of Deno.stdin.readable) { /* until the test ends stdin */ }
`;

Deno.test({
  name:
    "brk36: a script MCP server starts with the sandbox's descriptor and core limits, and watches no file",
  ignore: Deno.build.os !== "linux",
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "compozy-mcp-shell-" });
    try {
      Deno.writeTextFileSync(join(dir, "compozy.yaml"), "name: mcp\n");
      const data = join(dir, "data");
      Deno.mkdirSync(data);
      const script = join(dir, "server.js");
      Deno.writeTextFileSync(script, PROBE(data));
      const server = { id: "s", script, timeoutMs: 5_000, cwd: dir, permissions: { read: [data] } };
      const { command, args } = await scriptCommand(server, script);
      const child = new Deno.Command(command, {
        args,
        cwd: dir,
        stdin: "piped",
        stdout: "piped",
        stderr: "piped",
      })
        .spawn();
      const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
      let text = "";
      while (!text.includes("\n")) {
        const { value, done } = await reader.read();
        if (done) break;
        text += value;
      }
      const { pid, outcomes } = JSON.parse(text) as { pid: number; outcomes: string[] };
      const limits = Deno.readTextFileSync(`/proc/${pid}/limits`).split("\n");
      await child.stdin.close();
      await reader.cancel();
      const stderr = await new Response(child.stderr).text();
      assert.ok((await child.status).success, stderr);
      // Before: both watched.
      assert.deepEqual(outcomes, ["Deno.watchFs: NotCapable", "node fs.watch: NotCapable"]);
      // Before: the runtime's own limits (here a hard core limit of unlimited, descriptors in the thousands).
      assert.match(
        limits.find((l) => l.startsWith("Max core file size")) ?? "",
        /^Max core file size\s+0\s+0\s/,
      );
      assert.match(
        limits.find((l) => l.startsWith("Max open files")) ?? "",
        new RegExp(`^Max open files\\s+${DEFAULT_MAX_DESCRIPTORS}\\s+${DEFAULT_MAX_DESCRIPTORS}\\s`),
      );
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test("brk36: a script MCP server whose net grant connects only binds no UDP port", async () => {
  const dir = await Deno.makeTempDir({ prefix: "compozy-mcp-udp-" });
  try {
    Deno.writeTextFileSync(join(dir, "compozy.yaml"), "name: mcp\n");
    const script = join(dir, "server.js");
    Deno.writeTextFileSync(
      script,
      `import dgram from "node:dgram";
const outcomes = [];
for (const port of [0, 45000 + Math.floor(Math.random() * 5000)]) {
  outcomes.push(await new Promise((resolve) => {
    const socket = dgram.createSocket("udp4");
    socket.on("error", (e) => resolve(port === 0 ? "ephemeral: " + e.code : "port: " + e.code));
    socket.bind(port, "127.0.0.1", () => (socket.close(), resolve(port === 0 ? "ephemeral: bound" : "port: bound")));
  }));
}
console.log(outcomes.join("\\n"));
`,
    );
    const server = { id: "s", script, timeoutMs: 5_000, cwd: dir, permissions: { net: true } };
    const { command, args } = await scriptCommand(server, script);
    const ran = await new Deno.Command(command, { args, cwd: dir, stdout: "piped", stderr: "piped" })
      .output();
    assert.ok(ran.success, new TextDecoder().decode(ran.stderr));
    // Before: "port: bound".
    assert.deepEqual(new TextDecoder().decode(ran.stdout).trim().split("\n"), [
      "ephemeral: bound",
      "port: EPERM",
    ]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
