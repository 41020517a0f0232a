/**
 * A read through a consumer whose pending count is far too low: from a start past some matching subject's
 * last message, nats-server 2.9.10 sums a wildcard consumer's pending in a Go map's order (1600 or 2500 of
 * 3400 here). The read stopped where the count ran out and took the rest by single gets, one round trip per
 * message (1800 for one read). The consumer delivers what the count misses: the read must take it from there.
 */
import assert from "node:assert/strict";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { connectNats, readStream, readStreamCounts } from "../../pkg/nats/mod.ts";
import { startTestNats } from "../support/nats.ts";

const STREAM = "READS_UNDERCOUNT";
const LINES = 900;

Deno.test("a read whose consumer under-reports its pending count reads on through the consumer", async () => {
  const nats = await startTestNats();
  const nc = await connectNats(nats.url, { name: "read-stream-undercount-test" });
  const js = jetstream(nc);
  const jsm = await jetstreamManager(nc);
  try {
    await jsm.streams.add({ name: STREAM, subjects: ["c.*.*.evts.*.*"] });
    // Six subjects two at a time: each pair interleaves, and ends before the next begins.
    const body = new TextEncoder().encode("x".repeat(200));
    for (const pair of [["t0", "t1"], ["t2", "t3"], ["t4", "t5"]]) {
      for (let i = 0; i < LINES; i++) for (const id of pair) nc.publish(`c.run.task.evts.${id}.done`, body);
    }
    await nc.flush();
    const before = { ...readStreamCounts };
    // The count depends on a map's order: twelve reads meet a short one.
    for (let read = 0; read < 12; read++) {
      const messages = await readStream(js, STREAM, "c.run.*.evts.*.*", { walkLimit: 0, fromSeq: 2001 });
      assert.deepEqual(messages.map((m) => m.seq), [...Array(6 * LINES - 2000).keys()].map((i) => i + 2001));
    }
    assert.ok(readStreamCounts.countChecks > before.countChecks, "no read met a short pending count");
    assert.equal(readStreamCounts.singleGets - before.singleGets, 0, "messages were read one get at a time");
    assert.equal(readStreamCounts.fetchesExpired - before.fetchesExpired, 0, "a fetch waited out its expiry");
    assert.equal((await jsm.consumers.list(STREAM).next()).length, 0, "no consumer left behind");
  } finally {
    await nc.close();
    await nats.stop();
  }
});
