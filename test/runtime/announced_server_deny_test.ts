/**
 * A NATS server the cluster announces after the runtime started is denied to sandboxes too, warm ones
 * included (outside break attempt brk37). The deny list was made once at start from the URL and the servers
 * announced then; a node that joined (or came back) later was announced to the client, which may reconnect
 * to it, but a tool granted `net: true` could still connect to it. Real nats-servers (a two-node cluster
 * whose second node starts after the client connected) and real sandbox processes.
 */
import assert from "node:assert/strict";
import { connectNats, roleConnectAuth } from "../../pkg/nats/mod.ts";
import { denyNatsServers } from "../../pkg/runtime/bus_deny_watch.ts";
import { configureNetDeny, deniedNet, natsTargets } from "../../pkg/runtime/net_deny.ts";
import { ToolRunner } from "../../pkg/runtime/tool_runner.ts";
import { startTestCluster } from "../support/nats_cluster.ts";
import { call, ToolDir } from "./_helpers.ts";

/** Connects to the port it is given: "connected", or the error's name. */
const PROBE = `export default async ({ port }: { port: number }) => {
  try {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    conn.close();
    return "connected";
  } catch (e) {
    return (e as Error).name;
  }
};
`;

Deno.test({
  name: "brk37: a NATS node announced after the runtime started is denied to warm and new sandboxes",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const cluster = await startTestCluster(2);
    const dir = new ToolDir();
    const runner = new ToolRunner({ maxWarmPerKey: 1 });
    const late = cluster.nodes[1];
    await late.stop(); // Not yet part of the cluster when the runtime connects: n1 announces no other node.
    const nc = await connectNats(cluster.nodes[0].url, {
      name: "announced-server-deny-test",
      auth: roleConnectAuth(cluster.auth, "runtime"),
    });
    try {
      await denyNatsServers(nc, natsTargets(cluster.nodes[0].url));
      const entry = `127.0.0.1:${late.port}`;
      assert.ok(!deniedNet().includes(entry), `${entry} is denied before its node ever joined`);
      const tool = dir.tool("probe", PROBE);
      const probe = async () => {
        const result = await runner.run(call(tool, { port: late.port }, { permissions: { net: true } }));
        assert.ok(result.ok, JSON.stringify(result));
        return result.output;
      };
      // Reached, not refused by the sandbox: nothing listens there yet. This process stays warm.
      assert.equal(await probe(), "ConnectionRefused");
      await cluster.restartNode(1);
      const deadline = Date.now() + 30_000;
      while (!deniedNet().includes(entry)) {
        assert.ok(Date.now() < deadline, `${entry} was not denied 30 s after its node joined`);
        await new Promise((r) => setTimeout(r, 100));
      }
      assert.equal(await probe(), "NotCapable");
    } finally {
      await nc.close();
      await runner.close();
      await configureNetDeny([]);
      await cluster.stop();
      dir.cleanup();
    }
  },
});
