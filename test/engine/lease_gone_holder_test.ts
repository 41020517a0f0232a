/**
 * A holder found gone is not asked about again for the leases it wrote before that verdict. At load, a dead
 * engine's commands come back over several seconds (each after its own ack wait, some after a hand-back's
 * delay), and each question cost about a second (two "no responders" 1 s apart): in `deno task bench
 * cluster`'s kills row (20:17 UTC, load 28), 13 executions were taken 2.4-3.0 s after the kill and 26 more
 * only at 6.4 s, after a second inquiry. A lease its holder wrote after the verdict (an engine restarted
 * with the same id) is asked about again. One real nats-server; engine-x never connects, so it is gone.
 */
import assert from "node:assert/strict";
import { jetstream } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { EnginePresence, type Presence } from "../../engine/engine_presence.ts";
import { Leases } from "../../engine/leases.ts";
import { BUCKETS, connectNats, provisionJetStream } from "../../pkg/nats/mod.ts";
import { startTestNats } from "../support/nats.ts";

Deno.test("leases: a holder found gone is not asked about again for the leases it wrote before", async () => {
  const nats = await startTestNats();
  const nc = await connectNats(nats.url, { name: "engine-a", role: "engine" });
  try {
    await provisionJetStream(nc);
    const kv = await new Kvm(nc).open(BUCKETS.leases);
    const engine = new EnginePresence(nc);
    const asked: string[] = [];
    const presence: Presence = {
      isGone: (id) => {
        asked.push(id);
        return engine.isGone(id);
      },
      isPresent: (id) => engine.isPresent(id),
    };
    const leases = new Leases(kv, "engine-a", (await kv.status()).ttl, presence, jetstream(nc));
    const held = new TextEncoder().encode("engine-x");
    await kv.put("e1", held);
    await kv.put("e2", held);
    // Its last writes came some time before its death is noticed (leases compare times to within 250 ms).
    await new Promise((r) => setTimeout(r, 500));
    assert.equal(await leases.claim("e1"), "acquired");
    assert.equal(await leases.claim("e2"), "acquired");
    assert.deepEqual(asked, ["engine-x"], "asked once for two leases written before the verdict");
    // Written after the verdict: engine-x may be back; it is asked about again.
    await kv.put("e3", held);
    assert.equal(await leases.claim("e3"), "acquired");
    assert.deepEqual(asked, ["engine-x", "engine-x"]);
    for (const id of ["e1", "e2", "e3"]) assert.equal((await kv.get(id))?.string(), "engine-a");
  } finally {
    await nc.close();
    await nats.stop();
  }
});
