/**
 * The runtime process and its NATS, as the stack starts them. Hole 1 of the sandbox (issue 10): a tool
 * granted `net: true` opened a raw socket to the NATS port and subscribed to everything; every spelling of
 * the NATS address and of the other ports the stack owns must now be refused before any byte is sent.
 * Hole 5's NATS part: an output of 1 MiB or more failed as `runtime_unavailable` (max_payload).
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { Bus, connectNats } from "../../pkg/nats/mod.ts";
import {
  configureNetDeny,
  deniedNet,
  natsTargets,
  netDenyFlags,
  parseNetTargets,
} from "../../pkg/runtime/net_deny.ts";
import { startTestNats } from "../support/nats.ts";
import { callTool, startRuntimeProcess } from "../support/runtime.ts";

/** Tries each host:port as an attacker would: raw TCP, then the NATS protocol's CONNECT and SUB >. */
const PROBE_TOOL = `
export default async function (input: { targets: [string, number][] }) {
  const results: Record<string, string> = {};
  for (const [hostname, port] of input.targets) {
    const key = hostname + " " + port;
    try {
      const conn = await Deno.connect({ hostname, port });
      await conn.write(new TextEncoder().encode("CONNECT {}\\r\\nSUB > 1\\r\\nPING\\r\\n"));
      const buf = new Uint8Array(256);
      const n = await conn.read(buf);
      conn.close();
      results[key] = "connected: " + new TextDecoder().decode(buf.subarray(0, n ?? 0)).slice(0, 40);
    } catch (e) {
      results[key] = (e as Error).name;
    }
  }
  return results;
}
`;

Deno.test({
  name: "sandbox: a tool with net: true cannot reach NATS or the stack's other ports, under any spelling",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const nats = await startTestNats();
    const dir = await Deno.makeTempDir({ prefix: "compozy-net-deny-" });
    const toolPath = join(dir, "probe.ts");
    await Deno.writeTextFile(toolPath, PROBE_TOOL);
    // Stands in for a cluster or monitoring port the stack owns besides the client port.
    const other = Deno.listen({ hostname: "0.0.0.0", port: 0 });
    const otherPort = (other.addr as Deno.NetAddr).port;
    const runtime = startRuntimeProcess(nats, { COMPOZY_SANDBOX_DENY_NET: `127.0.0.1:${otherPort}` });
    const nc = await connectNats(nats.url, { name: "net-deny-test" });
    try {
      const bus = new Bus(nc, { source: "engine" });
      const port = nats.server.port;
      const hostAddresses = Deno.networkInterfaces()
        .filter((i) => !i.address.startsWith("fe80"))
        .map((i) => i.address);
      const spellings = [
        "localhost",
        "127.0.0.1",
        "127.1",
        "0.0.0.0",
        "0",
        "::1",
        "::",
        "::ffff:127.0.0.1",
        "2130706433",
        ...hostAddresses,
      ];
      const targets = [
        ...spellings.map((h) => [h, port]),
        ...["127.0.0.1", "0.0.0.0", "localhost", ...hostAddresses].map((h) => [h, otherPort]),
        // Another loopback address: denied too (127.0.0.0/8 with the port), for a server bound to 0.0.0.0.
        ["127.0.0.2", port],
      ];
      const reply = await callTool(bus, toolPath, { targets }, { net: true });
      if (reply.result.case !== "success") {
        throw new Error(`the probe failed: ${reply.result.value?.error?.message}`);
      }
      const results = JSON.parse(new TextDecoder().decode(reply.result.value.outputJson));
      const reached = Object.entries(results).filter(([_key, outcome]) => outcome !== "NotCapable");
      assert.deepEqual(reached, [], "every spelling is refused by the permission check, not by chance");
      assert.equal(Object.keys(results).length, new Set(targets.map(([h, p]) => `${h} ${p}`)).size);
    } finally {
      await nc.close();
      await runtime.stop();
      other.close();
      await nats.stop();
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "runtime: a 3 MiB tool output reaches the engine (NATS max_payload was 1 MiB)",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const nats = await startTestNats();
    const dir = await Deno.makeTempDir({ prefix: "compozy-big-output-" });
    const toolPath = join(dir, "big.ts");
    await Deno.writeTextFile(toolPath, "export default () => 'x'.repeat(3 * 1024 * 1024);\n");
    const runtime = startRuntimeProcess(nats);
    const nc = await connectNats(nats.url, { name: "big-output-test" });
    try {
      const reply = await callTool(new Bus(nc, { source: "engine" }), toolPath, {});
      if (reply.result.case !== "success") {
        throw new Error(`the call failed: ${reply.result.value?.error?.message}`);
      }
      assert.equal(
        JSON.parse(new TextDecoder().decode(reply.result.value.outputJson)).length,
        3 * 1024 * 1024,
      );
    } finally {
      await nc.close();
      await runtime.stop();
      await nats.stop();
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "runtime: COMPOZY_SANDBOX_MAX_DESCRIPTORS sets the descriptors each sandbox may hold",
  ignore: Deno.build.os !== "linux",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const nats = await startTestNats();
    const dir = await Deno.makeTempDir({ prefix: "compozy-max-descriptors-" });
    const toolPath = join(dir, "opener.ts");
    await Deno.writeTextFile(
      toolPath,
      `export default () => {
        const files: Deno.FsFile[] = [];
        try {
          while (files.length < 500) files.push(Deno.openSync(import.meta.filename!));
        } catch { /* the limit */ }
        for (const file of files) file.close();
        return files.length;
      };\n`,
    );
    const runtime = startRuntimeProcess(nats, { COMPOZY_SANDBOX_MAX_DESCRIPTORS: "64" });
    const nc = await connectNats(nats.url, { name: "max-descriptors-test" });
    try {
      const reply = await callTool(new Bus(nc, { source: "engine" }), toolPath, {}, { read: [dir] });
      if (reply.result.case !== "success") {
        throw new Error(`the call failed: ${reply.result.value?.error?.message}`);
      }
      const opened = JSON.parse(new TextDecoder().decode(reply.result.value.outputJson));
      // The default (128) leaves a tool ~98; 64 leaves it ~34.
      assert.ok(opened > 10 && opened < 64, `opened ${opened}`);
    } finally {
      await nc.close();
      await runtime.stop();
      await nats.stop();
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name:
    "runtime: COMPOZY_SANDBOX_MAX_FILE_BYTES and COMPOZY_SANDBOX_MAX_CALL_WRITE_BYTES bound a tool's writes",
  ignore: Deno.build.os !== "linux",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const nats = await startTestNats();
    const dir = await Deno.makeTempDir({ prefix: "compozy-max-file-bytes-" });
    const out = join(dir, "out");
    await Deno.mkdir(out);
    const toolPath = join(dir, "writer.ts");
    await Deno.writeTextFile(
      toolPath,
      `export default async (input: { files: number; bytes: number }) => {
        for (let i = 0; i < input.files; i++) {
          await Deno.writeFile(${JSON.stringify(out)} + "/f" + i, new Uint8Array(input.bytes));
          await new Promise((resolve) => setTimeout(resolve, 20));
        }
        return "wrote";
      };\n`,
    );
    const runtime = startRuntimeProcess(nats, {
      COMPOZY_SANDBOX_MAX_FILE_BYTES: String(1024 * 1024),
      COMPOZY_SANDBOX_MAX_CALL_WRITE_BYTES: String(4 * 1024 * 1024),
    });
    const nc = await connectNats(nats.url, { name: "max-file-bytes-test" });
    try {
      const bus = new Bus(nc, { source: "engine" });
      const write = { write: [out] };
      const big = await callTool(bus, toolPath, { files: 1, bytes: 2 * 1024 * 1024 }, write);
      assert.equal(big.result.case, "failed");
      assert.match(
        big.result.case === "failed" ? big.result.value.error?.message ?? "" : "",
        /wrote a file past the sandbox's bound of 1048576 bytes per file \(COMPOZY_SANDBOX_MAX_FILE_BYTES/,
      );
      assert.equal(Deno.statSync(join(out, "f0")).size, 1024 * 1024);
      const many = await callTool(bus, toolPath, { files: 256, bytes: 1024 * 1024 }, write);
      assert.equal(many.result.case, "failed");
      assert.match(
        many.result.case === "failed" ? many.result.value.error?.message ?? "" : "",
        /past the bound of 4194304 bytes \(COMPOZY_SANDBOX_MAX_CALL_WRITE_BYTES\)/,
      );
    } finally {
      await nc.close();
      await runtime.stop();
      await nats.stop();
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test("sandbox: the deny list covers every local spelling of each NATS port and rejects bad entries", async () => {
  assert.deepEqual(natsTargets("nats://u:p@127.0.0.1:4222, nats://[::1]:4223,nats-2"), [
    { host: "127.0.0.1", port: 4222 },
    { host: "[::1]", port: 4223 },
    { host: "nats-2", port: 4222 },
  ]);
  assert.deepEqual(parseNetTargets("127.0.0.1:6222,[::1]:8222"), [
    { host: "127.0.0.1", port: 6222 },
    { host: "[::1]", port: 8222 },
  ]);
  assert.throws(() => parseNetTargets("127.0.0.1"), /expected host:port/);
  await assert.rejects(configureNetDeny([{ host: "127.0.0.1", port: 0 }]), /Invalid port 0/);
  await configureNetDeny([{ host: "localhost", port: 4222 }]);
  try {
    for (const entry of ["127.0.0.1:4222", "0.0.0.0:4222", "[::1]:4222", "[::]:4222", "localhost:4222"]) {
      assert.ok(deniedNet().includes(entry), entry);
    }
    assert.equal(netDenyFlags().length, 1);
  } finally {
    await configureNetDeny([]);
  }
  assert.deepEqual(netDenyFlags(), []);
});
