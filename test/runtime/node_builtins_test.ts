/**
 * Node's network built-ins in a tool with a host-list `net` grant, imported or reached at run time by
 * `process.getBuiltinModule`, and `node:wasi`, refused at once. Real sandbox processes, a real loopback
 * HTTP server granted by host:port, and a stand-in bus port on the deny list.
 */
import assert from "node:assert/strict";
import { type ToolResult, ToolRunner } from "../../pkg/runtime/tool_runner.ts";
import { call, ToolDir, withDeniedBusPort } from "./_helpers.ts";

// Each reads the body of `GET /` on the given port through one API and returns it (or its error's text).
const CLIENTS = `
function viaHttp(http: any, port: number): Promise<string> {
  return new Promise((resolve) => {
    http.get(\`http://127.0.0.1:\${port}/\`, (res: any) => {
      let body = "";
      res.on("data", (chunk: unknown) => body += String(chunk));
      res.on("end", () => resolve(body));
    }).on("error", (e: unknown) => resolve("error: " + String(e)));
  });
}
function viaNet(net: any, port: number): Promise<string> {
  return new Promise((resolve) => {
    const socket = net.connect(port, "127.0.0.1", () => socket.write("GET / HTTP/1.0\\r\\n\\r\\n"));
    let text = "";
    socket.on("data", (chunk: unknown) => text += String(chunk));
    socket.on("end", () => resolve(text.split("\\r\\n\\r\\n")[1] ?? text));
    socket.on("error", (e: unknown) => resolve("error: " + String(e)));
  });
}
`;

// Imported: node:http set up before the sandbox wraps node:net's methods (fetch named too, as in the
// red team's report); node:tls, whose `rootCertificates` proxy needs `sys` to be inspected.
const IMPORTED = `import http from "node:http";
import https from "node:https";
import net from "node:net";
import tls from "node:tls";
${CLIENTS}
export default async ({ port }: { port: number }) => ({
  fetch: await (await fetch(\`http://127.0.0.1:\${port}/\`)).text(),
  http: await viaHttp(http, port),
  https: typeof https.request,
  net: await viaNet(net, port),
  tls: typeof tls.connect,
});`;

// Reached only at run time: node:http, node:https, node:http2 and node:tls load after the realm is frozen. The bus
// port is on the deny list although the grant names it.
const AT_RUN_TIME = `${CLIENTS}
export default async ({ port, bus }: { port: number; bus: number }) => {
  const load = (name: string) => (process as any).getBuiltinModule(name);
  return {
    http: await viaHttp(load("node:http"), port),
    https: typeof load("node:https").request,
    http2: typeof load("node:http2").connect,
    net: await viaNet(load("node:net"), port),
    tls: typeof load("node:tls").connect,
    busHttp: await viaHttp(load("node:http"), bus),
    busNet: await viaNet(load("node:net"), bus),
  };
};`;

function output(result: ToolResult): Record<string, string> {
  assert.ok(result.ok, JSON.stringify(result).slice(0, 2000));
  return result.output as Record<string, string>;
}

Deno.test("node:http, node:https, node:net and node:tls reach a server granted by host:port, imported or at run time", async () => {
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, () => new Response("hello"));
  try {
    await withDeniedBusPort(async ({ port: bus, connections, dir }) => {
      const runner = new ToolRunner({ startTimeoutMs: 60_000 });
      try {
        const input = { port: server.addr.port, bus };
        const imported = dir.tool("imported", IMPORTED);
        const atRunTime = dir.tool("at_run_time", AT_RUN_TIME);
        // The server by host:port (the bus port not granted), then the whole host (the bus port granted but
        // on the deny list, which wins).
        for (const net of [[`127.0.0.1:${server.addr.port}`], ["127.0.0.1"]]) {
          // Cold starts take seconds on a loaded machine; nothing here is about time.
          const options = { permissions: { net }, timeoutMs: 60_000 };
          const early = output(await runner.run(call(imported, input, options)));
          assert.deepEqual(early, {
            fetch: "hello",
            http: "hello",
            https: "function",
            net: "hello",
            tls: "function",
          }, `${net}`);
          const late = output(await runner.run(call(atRunTime, input, options)));
          assert.deepEqual(
            { http: late.http, https: late.https, http2: late.http2, net: late.net, tls: late.tls },
            { http: "hello", https: "function", http2: "function", net: "hello", tls: "function" },
            `${net}`,
          );
          assert.match(late.busHttp, /^error: .*(NotCapable|Requires net access)/, late.busHttp);
          assert.match(late.busNet, /^error: .*(NotCapable|Requires net access)/, late.busNet);
        }
        assert.equal(connections(), 0, "no sandbox reached the denied port");
      } finally {
        await runner.close();
      }
    });
  } finally {
    await server.shutdown();
  }
});

Deno.test("node:wasi is refused at once, imported or reached at run time", async () => {
  const dir = new ToolDir();
  const runner = new ToolRunner({ startTimeoutMs: 60_000 });
  try {
    // Refused before any code runs: the limit is long so that a hang would fail tool_timeout, not pass.
    const imported = await runner.run(call(
      dir.tool("wasi_import", `import * as wasi from "node:wasi"; export default () => typeof wasi;`),
      {},
      { timeoutMs: 60_000 },
    ));
    assert.ok(!imported.ok, JSON.stringify(imported));
    assert.equal(imported.failure.code, "tool_import_refused", imported.failure.message);
    assert.match(imported.failure.message, /node:wasi/);
    const late = await runner.run(call(
      dir.tool(
        "wasi_late",
        `export default () => { const { WASI } = (process as any).getBuiltinModule("node:wasi");
           return typeof new WASI({ version: "preview1" }).getImportObject; };`,
      ),
      {},
      { timeoutMs: 60_000 },
    ));
    assert.ok(!late.ok, JSON.stringify(late));
    assert.equal(late.failure.code, "tool_permission_denied", late.failure.message);
  } finally {
    await runner.close();
    dir.cleanup();
  }
});

Deno.test("a net grant naming a deny-listed port fails tool_permission_denied, not tool_crashed", async () => {
  await withDeniedBusPort(async ({ port, connections, dir, runner }) => {
    const tool = dir.tool(
      "grants_bus",
      `export default async ({ port }: { port: number }) => (await Deno.connect({ hostname: "127.0.0.1", port })).close();`,
    );
    const result = await runner.run(
      call(tool, { port }, { permissions: { net: [`127.0.0.1:${port}`] }, timeoutMs: 60_000 }),
    );
    assert.ok(!result.ok, JSON.stringify(result));
    assert.equal(result.failure.code, "tool_permission_denied", result.failure.message);
    assert.equal(connections(), 0, "no sandbox reached the denied port");
  });
});
