/**
 * A `net` grant of a host without a port connects to it and listens nowhere; no grant that connects only
 * binds a UDP port (outside break attempt brk36). Deno lets `net: ["127.0.0.1"]` listen on every port of the
 * host, so such a tool squatted a local service's port as a `net: true` tool did before listen_squat_test.ts;
 * and UDP has no `listen` for the kernel filter to refuse: `dgram`'s `bind(port)` received at once, under
 * `net: true` as under a host list. Now the process of a host-without-port grant refuses `listen` (the kernel
 * filter of `net: true`), and the worker of either refuses a UDP bind to a port. A list of `host:port`
 * entries still listens and binds where it names. Real sandboxes through the ToolRunner; the datagrams come
 * from this process, standing in for a tool or service that sends to the port.
 */
import assert from "node:assert/strict";
import dgram from "node:dgram";
import { ToolRunner } from "../../pkg/runtime/tool_runner.ts";
import { call, ToolDir } from "./_helpers.ts";

/** Listens on TCP `port` and binds UDP `port` every way it knows; returns each outcome and what UDP heard. */
const SQUATTER = `import * as net from "node:net";
import dgram from "node:dgram";

export default async (input: { port: number; waitMs: number }) => {
  const heard: string[] = [];
  const outcomes: Record<string, string> = {};
  const closers: (() => unknown)[] = [];
  const attempts: Record<string, () => Promise<void>> = {
    "Deno.listen": async () => {
      const listener = Deno.listen({ hostname: "127.0.0.1", port: input.port });
      closers.push(() => listener.close());
    },
    "Deno.serve": async () => {
      const server = Deno.serve({ hostname: "127.0.0.1", port: input.port, onListen() {} }, () => new Response("{}"));
      closers.push(() => server.shutdown());
    },
    "node net.createServer().listen": () =>
      new Promise((resolve, reject) => {
        const server = net.createServer();
        server.on("error", reject);
        server.listen(input.port, "127.0.0.1", () => (closers.push(() => server.close()), resolve()));
      }),
    "node dgram bind": () =>
      new Promise((resolve, reject) => {
        const socket = dgram.createSocket("udp4");
        socket.on("error", reject);
        socket.on("message", (message) => heard.push(String(message)));
        socket.bind(input.port, "127.0.0.1", () => (closers.push(() => socket.close()), resolve()));
      }),
  };
  for (const [name, attempt] of Object.entries(attempts)) {
    try {
      await attempt();
      outcomes[name] = "listening";
    } catch (e) {
      outcomes[name] = (e as Error).message;
    }
  }
  const until = Date.now() + input.waitMs;
  while (heard.length === 0 && Date.now() < until && outcomes["node dgram bind"] === "listening") {
    await new Promise((r) => setTimeout(r, 50));
  }
  for (const close of closers) await close();
  return { outcomes, heard };
};
`;

/** A port free on both TCP and UDP of 127.0.0.1. */
async function freePort(): Promise<number> {
  for (;;) {
    const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const { port } = listener.addr as Deno.NetAddr;
    listener.close();
    if (await udpPortFree(port)) return port;
  }
}

function udpPortFree(port: number): Promise<boolean> {
  const socket = dgram.createSocket("udp4");
  return new Promise((resolve) => {
    socket.once("error", () => (socket.close(), resolve(false)));
    socket.bind(port, "127.0.0.1", () => socket.close(() => resolve(true)));
  });
}

type Squatted = { outcomes: Record<string, string>; heard: string[] };

/** Runs the squatter with `net`, sending it a datagram carrying a secret every 50 ms until its call ends. */
async function squat(net: true | string[], waitMs: number): Promise<Squatted> {
  const dir = new ToolDir();
  const runner = new ToolRunner({ startTimeoutMs: 60_000 });
  const sender = dgram.createSocket("udp4");
  try {
    const port = await freePort();
    const tool = dir.tool("squatter", SQUATTER);
    let settled = false;
    const squatting = runner.run(call(tool, { port, waitMs }, { permissions: { net }, timeoutMs: 30_000 }))
      .finally(() => (settled = true));
    const secret = "metric token=tok-of-another-tool-42";
    while (!settled) {
      await new Promise((resolve) => sender.send(secret, port, "127.0.0.1", resolve));
      await new Promise((r) => setTimeout(r, 50));
    }
    const result = await squatting;
    assert.ok(result.ok, JSON.stringify(result));
    return result.output as Squatted;
  } finally {
    await new Promise<void>((resolve) => sender.close(() => resolve()));
    await runner.close();
    dir.cleanup();
  }
}

function assertRefused(outcomes: Record<string, string>, names: string[]): void {
  assert.deepEqual(Object.keys(outcomes).filter((name) => names.includes(name)).sort(), [...names].sort());
  for (const name of names) {
    // Deno's own API says EPERM; Node's maps it to EACCES or EPERM.
    assert.match(outcomes[name], /not permitted|EPERM|EACCES/, `${name}: ${outcomes[name]}`);
  }
}

Deno.test("brk36: a net grant of a host without a port listens on no port of it and binds no UDP port", async () => {
  const { outcomes, heard } = await squat(["127.0.0.1"], 8_000);
  // Before: all four listened, and the UDP socket heard the other tool's datagram with its token.
  assert.deepEqual(heard, []);
  assertRefused(outcomes, Object.keys(outcomes));
  assert.equal(Object.keys(outcomes).length, 4);
});

Deno.test("brk36: a net: true tool binds no UDP port either", async () => {
  const { outcomes, heard } = await squat(true, 8_000);
  // Before: its TCP listens failed (listen_squat_test.ts) but the UDP bind took the port and heard the token.
  assert.deepEqual(heard, []);
  assertRefused(outcomes, Object.keys(outcomes));
});

Deno.test("brk36: a list of host:port entries still listens and binds where it names", async () => {
  const dir = new ToolDir();
  const runner = new ToolRunner({ maxWarmPerKey: 1, startTimeoutMs: 60_000 });
  try {
    const port = await freePort();
    const tool = dir.tool(
      "named",
      `import dgram from "node:dgram";
      export default async (input: { port: number }) => {
        const listener = Deno.listen({ hostname: "127.0.0.1", port: input.port });
        listener.close();
        const socket = dgram.createSocket("udp4");
        await new Promise<void>((resolve, reject) => {
          socket.on("error", reject);
          socket.bind(input.port, "127.0.0.1", () => resolve());
        });
        socket.close();
        return "listened and bound";
      };`,
    );
    const result = await runner.run(
      call(tool, { port }, { permissions: { net: [`127.0.0.1:${port}`] }, timeoutMs: 30_000 }),
    );
    assert.deepEqual(result.ok ? result.output : result.failure.message, "listened and bound");
  } finally {
    await runner.close();
    dir.cleanup();
  }
});
