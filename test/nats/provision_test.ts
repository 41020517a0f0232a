/**
 * Replication as configuration (issue 12): provisioning raises replicas when asked, never lowers what an
 * operator raised, says what it changes, keeps limits changed on the server unless configured, and refuses
 * replicas a single server cannot hold.
 */
import assert from "node:assert/strict";
import { jetstreamManager } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { BUCKETS, connectNats, ProvisionError, provisionJetStream, STREAMS } from "../../pkg/nats/mod.ts";
import { DEFAULT_BUCKETS, DEFAULT_STREAMS } from "../../pkg/nats/provision.ts";
import { startTestNats } from "../support/nats.ts";
import { startTestCluster } from "../support/nats_cluster.ts";

Deno.test("provision: R3 on a single server is refused with a clear message, before anything is created", async () => {
  const nats = await startTestNats();
  const nc = await connectNats(nats.url);
  try {
    await assert.rejects(provisionJetStream(nc, { replicas: 3 }), (e: unknown) => {
      assert.ok(e instanceof ProvisionError);
      assert.match(e.message, /Cannot provision 3 replicas: the NATS server .* is a single node/);
      return true;
    });
    await assert.rejects(provisionJetStream(nc, { replicas: 7 }), /JetStream accepts 1 to 5/);
    const jsm = await jetstreamManager(nc);
    assert.deepEqual(await jsm.streams.names().next(), []);
  } finally {
    await nc.close();
    await nats.stop();
  }
});

Deno.test("provision: limits changed on the server are kept unless configured; configured ones are applied and told", async () => {
  const nats = await startTestNats();
  const nc = await connectNats(nats.url);
  try {
    await provisionJetStream(nc);
    const jsm = await jetstreamManager(nc);
    const events = (await jsm.streams.info(STREAMS.events)).config;
    const ninetyDays = 90 * 86_400_000 * 1_000_000;
    await jsm.streams.update(STREAMS.events, { ...events, max_age: ninetyDays });
    // A process with default settings leaves the operator's 90 days alone (it used to set 30 days back).
    const again = await provisionJetStream(nc);
    assert.deepEqual(again.updated, []);
    assert.equal((await jsm.streams.info(STREAMS.events)).config.max_age, ninetyDays);
    // Configured limits are applied, and the report says what changed.
    const configured = await provisionJetStream(nc, {
      maxAgeMs: { [STREAMS.events]: 7 * 86_400_000 },
      maxBytes: { [STREAMS.logs]: 1024 * 1024 * 1024 },
    });
    assert.deepEqual(configured.updated.sort(), [STREAMS.events, STREAMS.logs].sort());
    assert.ok(
      configured.notes.some((n) => /^stream EVENTS: max_age 7776000000000000 -> 604800000000000$/.test(n)),
    );
    assert.ok(configured.notes.some((n) => /^stream LOGS: max_bytes -1 -> 1073741824$/.test(n)));
    assert.equal((await jsm.streams.info(STREAMS.logs)).config.max_bytes, 1024 * 1024 * 1024);

    // The dropped signals' bucket (one entry per signal no wait took, which any client can send) is bounded
    // and, full, lets its oldest entries go: a flood never refuses a drop's record, whose failure
    // sends the signal back until the DLQ. Before (eng45) it had no bound, and the flood took JetStream's
    // storage from the histories. Shown on a bucket of the same spec made small.
    const dropped = (await jsm.streams.info(`KV_${BUCKETS.droppedSignals}`)).config;
    assert.equal(dropped.max_msgs, 2_000_000);
    assert.equal(dropped.discard, "old");
    const spec = DEFAULT_BUCKETS.find((b) => b.name === BUCKETS.droppedSignals)!;
    // Made unbounded, as a server provisioned before the bound has it: provisioning bounds it.
    await provisionJetStream(nc, {}, [], [{ name: "eng45_small", ttlMs: spec.ttlMs, history: spec.history }]);
    const bounded = await provisionJetStream(nc, {}, [], [{ ...spec, name: "eng45_small", maxEntries: 20 }]);
    assert.deepEqual(bounded.updated, ["eng45_small"]);
    const small = await new Kvm(nc).open("eng45_small");
    for (let i = 0; i < 200; i++) await small.put(`e.${i}`, new Uint8Array());
    const info = await jsm.streams.info("KV_eng45_small");
    assert.equal(info.state.messages, 20);
    assert.notEqual(await small.get("e.199"), null);
  } finally {
    await nc.close();
    await nats.stop();
  }
});

Deno.test({
  name: "provision: on a 3-node cluster, R3 is applied, and an operator's R3 is never set back to R1",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const cluster = await startTestCluster(3);
    const nc = await connectNats(cluster.url);
    try {
      const first = await provisionJetStream(nc);
      assert.equal(first.created.length, DEFAULT_STREAMS.length + DEFAULT_BUCKETS.length);
      const jsm = await jetstreamManager(nc);
      // The operator raises one stream and one bucket by hand.
      for (const name of [STREAMS.events, `KV_${BUCKETS.workflowExecutions}`]) {
        const config = (await jsm.streams.info(name)).config;
        await jsm.streams.update(name, { ...config, num_replicas: 3 });
      }
      // A process without replicas configured keeps them; one configured for 1 keeps them too, and says so.
      const unconfigured = await provisionJetStream(nc);
      assert.deepEqual(unconfigured.updated, []);
      const one = await provisionJetStream(nc, { replicas: 1 });
      assert.deepEqual(one.updated, []);
      assert.ok(
        one.notes.some((n) => /^stream EVENTS: keeping 3 replicas although 1 are configured/.test(n)),
      );
      assert.equal((await jsm.streams.info(STREAMS.events)).config.num_replicas, 3);
      assert.equal((await jsm.streams.info(`KV_${BUCKETS.workflowExecutions}`)).config.num_replicas, 3);
      // Configured R3 raises every other stream and bucket in place.
      const raised = await provisionJetStream(nc, { replicas: 3 });
      assert.equal(raised.updated.length, DEFAULT_STREAMS.length + DEFAULT_BUCKETS.length - 2);
      assert.ok(raised.notes.some((n) => n === "stream LOGS: num_replicas 1 -> 3"));
      for await (const info of jsm.streams.list()) {
        assert.equal(info.config.num_replicas, 3, info.config.name);
      }
      // R5 does not fit on 3 servers: a clear error, not JetStream's.
      await assert.rejects(provisionJetStream(nc, { replicas: 5 }), (e: unknown) => {
        assert.ok(e instanceof ProvisionError, String(e));
        assert.match(e.message, /fewer than 5 JetStream servers/);
        return true;
      });
    } finally {
      await nc.close();
      await cluster.stop();
    }
  },
});
