/**
 * What the last round left open (issue 10): empty log lines that cost the runtime a frame each, and
 * what a call leaves behind in its warm sandbox. Real sandbox processes; the sandbox's own I/O counters in
 * /proc show what crossed to the runtime.
 */
import assert from "node:assert/strict";
import { ToolRunner } from "../../pkg/runtime/tool_runner.ts";
import { call, eventually, ToolDir } from "./_helpers.ts";

/** Bytes the process has written (to its stdout, the frames to the runtime: it has no other writes). */
function bytesWritten(pid: number): number {
  const io = Deno.readTextFileSync(`/proc/${pid}/io`);
  return Number(/^wchar: (\d+)$/m.exec(io)![1]);
}

Deno.test("empty log lines are charged against the call's log budget", async () => {
  const dir = new ToolDir();
  const runner = new ToolRunner({ maxLogBytes: 1024, maxWarmPerKey: 1 });
  try {
    const tool = dir.tool(
      "empty_lines",
      `export default (n: number, ctx: any) => {
         for (let i = 0; i < n; i++) { console.log(""); ctx.log.info(""); Deno.stdout.writeSync(new Uint8Array(0)); }
         return "done";
       };`,
    );
    const lines: string[] = [];
    const first = await runner.run(call(tool, 1, { onLog: (e) => lines.push(e.message) }));
    assert.deepEqual(first.ok && first.output, "done");
    const [pid] = runner.stats().pids;
    const before = bytesWritten(pid);
    const flood = await runner.run(call(tool, 100_000, { onLog: (e) => lines.push(e.message) }));
    assert.deepEqual(flood.ok && flood.output, "done");
    assert.deepEqual(runner.stats().pids, [pid], "the same warm process ran both calls");
    // 300,000 empty lines were one frame (~30 bytes) each: 9 MB. Charged LOG_LINE_COST each (protocol.ts),
    // 1 KiB of budget lets a few through.
    const written = bytesWritten(pid) - before;
    assert.ok(written < 64 * 1024, `the sandbox sent ${written} bytes of frames for empty lines`);
    assert.deepEqual(lines.filter((l) => !/log output over/.test(l)), []);
  } finally {
    await runner.close();
    dir.cleanup();
  }
});

/** A loopback TCP server that counts the connections open on it now. */
function countingServer(): { port: number; open: () => number; close: () => void } {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  let open = 0;
  const conns = new Set<Deno.Conn>();
  (async () => {
    for await (const conn of listener) {
      open++;
      conns.add(conn);
      (async () => {
        const buf = new Uint8Array(4096);
        try {
          for (let n = await conn.read(buf); n !== null; n = await conn.read(buf)) {
            // An HTTP request: answer it and keep the connection alive.
            if (new TextDecoder().decode(buf.subarray(0, n)).startsWith("GET")) {
              await conn.write(new TextEncoder().encode("HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"));
            }
          }
        } catch {
          // A reset by the peer ends the connection as well as an EOF does.
        }
        open--;
        conns.delete(conn);
        conn.close();
      })();
    }
  })().catch(() => {/* the listener was closed */});
  return {
    port: (listener.addr as Deno.NetAddr).port,
    open: () => open,
    close: () => {
      for (const conn of conns) conn.close();
      listener.close();
    },
  };
}

Deno.test({
  name: "sockets a call opened through node:net and node:http are closed when it returns",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const dir = new ToolDir();
    const runner = new ToolRunner({ maxWarmPerKey: 1 });
    const server = countingServer();
    try {
      const tool = dir.tool(
        "sockets",
        `import net from "node:net";
         import http from "node:http";
         const keepAlive = new http.Agent({ keepAlive: true });
         export default async ({ mode, port }: { mode: string; port: number }) => {
           if (mode === "net") {
             const socket = net.connect(port, "127.0.0.1");
             await new Promise((resolve) => socket.once("connect", resolve));
             socket.destroy = () => socket; // a tool that would keep its socket
             return "left open";
           }
           if (mode === "server") {
             const listening = net.createServer(() => {}).listen(0, "127.0.0.1");
             await new Promise((resolve) => listening.once("listening", resolve));
             return (listening.address() as { port: number }).port;
           }
           return await new Promise((resolve, reject) =>
             http.get({ host: "127.0.0.1", port, agent: keepAlive }, (res) => {
               let body = "";
               res.on("data", (c) => body += c);
               res.on("end", () => resolve(body));
             }).on("error", reject)
           );
         };`,
      );
      // A list naming each address with its port: `net: true` and a host without a port listen nowhere
      // (kernel_limits.ts), a list may listen on what it names (port 0: any free one).
      const permissions = { net: [`127.0.0.1:${server.port}`, "127.0.0.1:0"] };
      for (const mode of ["net", "http"]) {
        const result = await runner.run(call(tool, { mode, port: server.port }, { permissions }));
        assert.ok(result.ok, JSON.stringify(result));
        assert.ok(await eventually(() => server.open() === 0), `a ${mode} connection outlived its call`);
      }
      const listened = await runner.run(call(tool, { mode: "server", port: 0 }, { permissions }));
      assert.ok(listened.ok, JSON.stringify(listened));
      const port = listened.output as number;
      await assert.rejects(Deno.connect({ hostname: "127.0.0.1", port }), "the server outlived its call");
      const again = await runner.run(call(tool, { mode: "http", port: server.port }, { permissions }));
      assert.deepEqual(again.ok && again.output, "ok");
    } finally {
      server.close();
      await runner.close();
      dir.cleanup();
    }
  },
});
