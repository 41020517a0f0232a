/**
 * The Deno-native NATS transport (pkg/nats/transport/), against a real nats-server where the behaviour is
 * the server's (reconnect, 8 MiB payloads, headers, drain, TLS) and against a scripted socket where the test
 * must control how the bytes are cut (partial frames).
 */
import assert from "node:assert/strict";
import { headers, type NatsConnection } from "@nats-io/transport-node";
import { connectNats } from "../../pkg/nats/connection.ts";
import { connect } from "../../pkg/nats/transport/connect.ts";
import { startTestNats } from "../support/nats.ts";

const EIGHT_MIB = 8 * 1024 * 1024;

/** Resolves on the connection's next status of `type`; the caller bounds the wait. */
async function nextStatus(nc: NatsConnection, type: string): Promise<void> {
  for await (const s of nc.status()) if (s.type === type) return;
}

/** `promise`, or a failure naming `what` after `ms`. */
async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) =>
        timer = setTimeout(() => reject(new Error(`no ${what} in ${ms} ms`)), ms)
      ),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

Deno.test("Deno transport against a real nats-server", async (t) => {
  const nats = await startTestNats();
  const nc = await connectNats(nats.url, { name: "deno-transport-test" });
  try {
    await t.step("an 8 MiB message with headers arrives whole, byte for byte", async () => {
      const payload = new Uint8Array(EIGHT_MIB - 1024);
      for (let i = 0; i < payload.length; i++) payload[i] = (i * 31 + 7) & 0xff;
      const sub = nc.subscribe("transport.big", { max: 1 });
      const h = headers();
      h.set("X-Check", "big");
      nc.publish("transport.big", payload, { headers: h });
      for await (const m of sub) {
        assert.equal(m.headers?.get("X-Check"), "big");
        assert.equal(m.data.length, payload.length);
        assert.deepEqual(m.data, payload);
      }
    });

    await t.step("a burst of small requests is answered in order (frames joined on write)", async () => {
      const echo = nc.subscribe("transport.echo", { callback: (_e, m) => void m.respond(m.data) });
      const replies = await Promise.all(
        Array.from({ length: 500 }, (_, i) => nc.request("transport.echo", `${i}`, { timeout: 10_000 })),
      );
      assert.deepEqual(replies.map((r) => r.string()), Array.from({ length: 500 }, (_, i) => `${i}`));
      echo.unsubscribe();
    });

    await t.step("after a server restart the client reconnects and its subscriptions resume", async () => {
      const reconnected = nextStatus(nc, "reconnect");
      await nats.restart({ crash: true });
      await within(reconnected, 30_000, "reconnect");
      const sub = nc.subscribe("transport.after", { max: 1 });
      await nc.flush();
      nc.publish("transport.after", "back");
      for await (const m of sub) assert.equal(m.string(), "back");
    });
  } finally {
    await nc.drain();
    await nats.stop();
  }
});

Deno.test("Deno transport: drain delivers what was published before it, then closes", async () => {
  const nats = await startTestNats();
  try {
    const receiver = await connectNats(nats.url, { name: "receiver" });
    const sender = await connectNats(nats.url, { name: "sender" });
    const got: string[] = [];
    const sub = receiver.subscribe("transport.drain", { callback: (_e, m) => void got.push(m.string()) });
    await receiver.flush();
    for (let i = 0; i < 1_000; i++) sender.publish("transport.drain", `${i}`);
    await sender.drain();
    assert.equal(sender.isClosed(), true);
    await receiver.flush();
    await sub.drain();
    await receiver.close();
    assert.equal(got.length, 1_000);
    assert.equal(got[999], "999");
  } finally {
    await nats.stop();
  }
});

/**
 * A scripted server: sends INFO one byte per write, then answers CONNECT/PING with PONG and delivers a MSG
 * cut in the middle of its header line and of its payload, so the client's reads see partial frames.
 */
Deno.test("Deno transport: protocol frames cut at any byte are parsed whole", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  const enc = new TextEncoder();
  let connectLine = "";
  const server = (async () => {
    const conn = await listener.accept();
    conn.setNoDelay(true);
    const info =
      `INFO {"server_id":"scripted","version":"2.9.10","proto":1,"max_payload":1048576,"headers":true}\r\n`;
    for (const byte of enc.encode(info)) await conn.write(Uint8Array.of(byte));
    const reader = readLines(conn);
    let sid = "";
    for await (const line of reader) {
      if (line.startsWith("CONNECT ")) connectLine = line;
      else if (line === "PING") await conn.write(enc.encode("PONG\r\n"));
      else if (line.startsWith("SUB ")) {
        sid = line.split(" ")[2];
        const msg = enc.encode(`MSG cut.frames ${sid} 11\r\nhello world\r\n`);
        for (const [from, to] of [[0, 5], [5, 20], [20, msg.length]]) {
          await conn.write(msg.subarray(from, to));
          await new Promise((r) => setTimeout(r, 10));
        }
      } else if (line.startsWith("UNSUB")) break;
    }
    conn.close();
  })();
  try {
    const nc = await connect({ servers: `127.0.0.1:${port}`, reconnect: false, pingInterval: 60_000 });
    const sub = nc.subscribe("cut.frames", { max: 1 });
    for await (const m of sub) assert.equal(m.string(), "hello world");
    await nc.close();
    await server;
    assert.match(connectLine, /"lang":"nats\.deno\.compozy"/);
  } finally {
    listener.close();
  }
});

async function* readLines(conn: Deno.Conn): AsyncGenerator<string> {
  const dec = new TextDecoder();
  let pending = "";
  const buf = new Uint8Array(4096);
  while (true) {
    const n = await conn.read(buf).catch(() => null);
    if (n === null) return;
    pending += dec.decode(buf.subarray(0, n));
    let at: number;
    while ((at = pending.indexOf("\r\n")) >= 0) {
      yield pending.slice(0, at);
      pending = pending.slice(at + 2);
    }
  }
}

const hasOpenssl = await new Deno.Command("openssl", { args: ["version"], stdout: "null", stderr: "null" })
  .output().then((o) => o.success, () => false);

Deno.test({
  name: "Deno transport: TLS when the server requires it, refused for an unknown certificate authority",
  ignore: !hasOpenssl,
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "compozy-tls-" });
    const { ca, cert, key } = await makeCertificates(dir);
    const port = freePort();
    const server = new Deno.Command("nats-server", {
      args: ["-a", "127.0.0.1", "-p", String(port), "--tls", "--tlscert", cert, "--tlskey", key],
      stdout: "null",
      stderr: "null",
    }).spawn();
    try {
      const nc = await connectUntilUp(() =>
        connect({ servers: `127.0.0.1:${port}`, tls: { caFile: ca }, reconnect: false })
      );
      assert.equal(nc.info?.tls_required, true);
      const sub = nc.subscribe("tls.echo", { max: 1 });
      nc.publish("tls.echo", "secret");
      for await (const m of sub) assert.equal(m.string(), "secret");
      await nc.close();

      // Without our CA the server's self-signed certificate must not be accepted.
      await assert.rejects(connect({ servers: `127.0.0.1:${port}`, reconnect: false, timeout: 5_000 }));
    } finally {
      server.kill("SIGTERM");
      await server.status;
      await Deno.remove(dir, { recursive: true });
    }
  },
});

/** A test CA and a server certificate it signed for 127.0.0.1 (rustls refuses a self-signed leaf). */
async function makeCertificates(dir: string): Promise<{ ca: string; cert: string; key: string }> {
  const ca = `${dir}/ca.pem`, caKey = `${dir}/ca.key`, csr = `${dir}/server.csr`;
  const cert = `${dir}/cert.pem`, key = `${dir}/key.pem`, ext = `${dir}/ext.cnf`;
  await Deno.writeTextFile(ext, "subjectAltName=IP:127.0.0.1,DNS:localhost\n");
  const steps = [
    ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=compozy-test-ca"]
      .concat(["-keyout", caKey, "-out", ca]),
    ["req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost", "-keyout", key, "-out", csr],
    ["x509", "-req", "-in", csr, "-CA", ca, "-CAkey", caKey, "-CAcreateserial", "-days", "1"]
      .concat(["-extfile", ext, "-out", cert]),
  ];
  for (const args of steps) {
    const made = await new Deno.Command("openssl", { args, stdout: "null", stderr: "piped" }).output();
    assert.ok(made.success, new TextDecoder().decode(made.stderr));
  }
  return { ca, cert, key };
}

function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

/** The server needs a moment to listen: retry a refused connection, within a bound. */
async function connectUntilUp(dial: () => Promise<NatsConnection>): Promise<NatsConnection> {
  const deadline = Date.now() + 10_000;
  while (true) {
    try {
      return await dial();
    } catch (e) {
      if (Date.now() > deadline) throw e;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}
