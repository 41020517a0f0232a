/**
 * A tool granted `net: true` reaches no unix socket (issue 10, sbx34). Deno 2.9.6 checks a Linux abstract
 * socket (`path: "\0name"`) as `net`, not as a path, and no deny flag can name one: before, such a tool
 * listened on and connected to every abstract socket of the runtime's network namespace (D-Bus, container
 * shims). Now its process refuses `socket(AF_UNIX, …)` (kernel_limits.ts): every entry point fails, the
 * test's own abstract listener accepts nothing, and the tool still resolves names and fetches. A tool granted
 * a list naming a socket (`unix:/path`), with read and write on its path, keeps it. Real sandboxes through
 * the ToolRunner.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { ToolRunner } from "../../pkg/runtime/tool_runner.ts";
import { call, ToolDir } from "./_helpers.ts";

const PROBE = `import * as net from "node:net";

const settle = (start: (done: (outcome: string) => void) => void) =>
  new Promise<string>((resolve) => {
    const timer = setTimeout(() => resolve("no answer"), 3_000);
    start((outcome) => (clearTimeout(timer), resolve(outcome)));
  });

export default async (input: { abstract: string; fetchUrl: string }) => {
  const mine = input.abstract + "-mine";
  const attempts: Record<string, () => Promise<string>> = {
    "Deno.connect": async () => ((await Deno.connect({ transport: "unix", path: input.abstract })).close(), "connected"),
    "Deno.listen": async () => (Deno.listen({ transport: "unix", path: mine }).close(), "listening"),
    "node net.connect": () =>
      settle((done) => {
        const socket = net.connect(input.abstract, () => (socket.destroy(), done("connected")));
        socket.on("error", (e) => done(e.message));
      }),
    "node net.createConnection({ path })": () =>
      settle((done) => {
        const socket = net.createConnection({ path: input.abstract }, () => (socket.destroy(), done("connected")));
        socket.on("error", (e) => done(e.message));
      }),
    "node net.createServer().listen": () =>
      settle((done) => {
        const server = net.createServer();
        server.on("error", (e) => done(e.message));
        server.listen(mine + "-node", () => (server.close(), done("listening")));
      }),
  };
  const outcomes: Record<string, string> = {};
  for (const [name, attempt] of Object.entries(attempts)) {
    try {
      outcomes[name] = await attempt();
    } catch (e) {
      outcomes[name] = (e as Error).message;
    }
  }
  // Names still resolve and the network still answers.
  outcomes.fetch = await (await fetch(input.fetchUrl)).text();
  return outcomes;
};
`;

const PATH_SOCKET = `export default async (input: { path: string }) => {
  const conn = await Deno.connect({ transport: "unix", path: input.path });
  conn.close();
  return "connected";
};
`;

/** An abstract listener of the test's own, counting what it accepts. */
function abstractListener(): { path: string; accepted: () => number; close: () => void } {
  const path = `\0compozy-sbx34-${crypto.randomUUID()}`;
  const listener = Deno.listen({ transport: "unix", path });
  let accepted = 0;
  (async () => {
    for await (const conn of listener) {
      accepted++;
      conn.close();
    }
  })().catch(() => {});
  return { path, accepted: () => accepted, close: () => listener.close() };
}

Deno.test("sbx34: net: true reaches no abstract unix socket, and still resolves and fetches", async () => {
  const dir = new ToolDir();
  const listener = abstractListener();
  const http = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, () => new Response("fetched"));
  const runner = new ToolRunner({ maxWarmPerKey: 1 });
  try {
    const tool = dir.tool("probe", PROBE);
    const fetchUrl = `http://localhost:${http.addr.port}/`;
    const result = await runner.run(
      call(tool, { abstract: listener.path, fetchUrl }, { permissions: { net: true }, timeoutMs: 30_000 }),
    );
    assert.ok(result.ok, JSON.stringify(result));
    const { fetch, ...outcomes } = result.output as Record<string, string>;
    assert.equal(fetch, "fetched");
    for (const [name, outcome] of Object.entries(outcomes)) {
      // Deno's own API says EPERM; Node's maps it to EACCES.
      assert.match(outcome, /not permitted|EPERM|EACCES/, `${name}: ${outcome}`);
    }
    assert.equal(Object.keys(outcomes).length, 5);
    assert.equal(listener.accepted(), 0);
  } finally {
    await runner.close();
    await http.shutdown();
    listener.close();
    dir.cleanup();
  }
});

Deno.test("sbx34: a net list naming a path socket, with read and write on it, still connects to it", async () => {
  const dir = new ToolDir();
  const socketDir = join(dir.path, "run");
  Deno.mkdirSync(socketDir);
  const path = join(socketDir, "s.sock");
  const listener = Deno.listen({ transport: "unix", path });
  let accepted = 0;
  const served = (async () => {
    for await (const conn of listener) {
      accepted++;
      conn.close();
    }
  })();
  const runner = new ToolRunner({ maxWarmPerKey: 1 });
  try {
    const tool = dir.tool("path_socket", PATH_SOCKET);
    const result = await runner.run(
      call(tool, { path }, {
        permissions: { net: ["example.com", `unix:${path}`], read: [socketDir], write: [socketDir] },
        timeoutMs: 30_000,
      }),
    );
    assert.deepEqual(result.ok ? result.output : result.failure.message, "connected");
    assert.equal(accepted, 1);
  } finally {
    await runner.close();
    listener.close();
    await served;
    dir.cleanup();
  }
});
