/**
 * Whether an engine is gone, asked of a 3-node cluster right as that engine's connection closes. A question
 * sent from another node while the closing engine's subscription is still known there is routed to the
 * engine's node, which drops it (only the asker's node answers "no responders"): it times out. Counted as
 * "present", that one lost question made the asking engine wait for the lease's TTL (15 s) instead of taking
 * the dead engine's executions (in `deno task bench cluster`, kills row, 19:54 UTC: every execution of the
 * killed engine and the state folder's role taken 13-20 s after the kill, none as "gone").
 */
import assert from "node:assert/strict";
import { EnginePresence } from "../../engine/engine_presence.ts";
import { connectNats } from "../../pkg/nats/mod.ts";
import { startTestCluster } from "../support/nats_cluster.ts";

const ROUNDS = 8;

Deno.test("presence: an engine whose connection just closed is gone, asked from another node", async () => {
  const cluster = await startTestCluster(3);
  const urls = cluster.url.split(",");
  const asker = await connectNats(urls[1], { name: "engine-b", role: "engine" });
  const verdicts: boolean[] = [];
  try {
    const presence = new EnginePresence(asker);
    for (let round = 0; round < ROUNDS; round++) {
      const id = `engine-a${round}`;
      const nc = await connectNats(urls[0], { name: id, role: "engine" });
      new EnginePresence(nc).answer(id);
      await nc.flush();
      // Its subscription reaches the asker's node through the route a moment later.
      const deadline = Date.now() + 30_000;
      while (!(await presence.isPresent(id))) {
        assert.ok(Date.now() < deadline, `${id} answers while connected`);
        await new Promise((r) => setTimeout(r, 50));
      }
      await nc.close();
      verdicts.push(await presence.isGone(id));
    }
    assert.deepEqual(verdicts, verdicts.map(() => true), `verdicts: ${verdicts}`);
  } finally {
    await asker.close();
    await cluster.stop();
  }
});
