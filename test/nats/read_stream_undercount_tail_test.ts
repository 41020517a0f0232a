/**
 * A read whose consumer under-reports its pending count (nats-server 2.9.10, a wildcard filter from a start
 * past some matching subject's last message), in a stream other runs wrote to after the read's last match: the
 * usual case for an execution's history. Once the count ran out, the read went on through the consumer with a
 * batch sized to the end sequence; the consumer had fewer matches left, so every such read ended on a stalled
 * fetch (FETCH_STALL_MS, 100 ms, then a get). The read knows where its matches end with one get of the last.
 */
import assert from "node:assert/strict";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { connectNats, readStream, readStreamCounts } from "../../pkg/nats/mod.ts";
import { startTestNats } from "../support/nats.ts";

const STREAM = "READS_UNDERCOUNT_TAIL";
const LINES = 900;

Deno.test("an under-counted read followed by other runs' messages ends without a stalled fetch", async () => {
  const nats = await startTestNats();
  const nc = await connectNats(nats.url, { name: "read-stream-undercount-tail-test" });
  const js = jetstream(nc);
  const jsm = await jetstreamManager(nc);
  try {
    await jsm.streams.add({ name: STREAM, subjects: ["c.*.*.evts.*.*"] });
    // Six subjects two at a time: each pair interleaves, and ends before the next begins (the pattern the
    // server under-counts). Then another run writes.
    const body = new TextEncoder().encode("x".repeat(200));
    for (const pair of [["t0", "t1"], ["t2", "t3"], ["t4", "t5"]]) {
      for (let i = 0; i < LINES; i++) for (const id of pair) nc.publish(`c.run.task.evts.${id}.done`, body);
    }
    for (let i = 0; i < 50; i++) nc.publish(`c.other.task.evts.t${i % 3}.done`, body);
    await nc.flush();
    const before = { ...readStreamCounts };
    // The count depends on a map's order: twelve reads meet a short one.
    for (let read = 0; read < 12; read++) {
      const messages = await readStream(js, STREAM, "c.run.*.evts.*.*", { walkLimit: 0, fromSeq: 2001 });
      assert.deepEqual(messages.map((m) => m.seq), [...Array(6 * LINES - 2000).keys()].map((i) => i + 2001));
    }
    assert.ok(readStreamCounts.countChecks > before.countChecks, "no read met a short pending count");
    assert.equal(readStreamCounts.stallChecks - before.stallChecks, 0, "a read ended on a stalled fetch");
    assert.equal(readStreamCounts.singleGets - before.singleGets, 0, "messages were read one get at a time");
    assert.equal(readStreamCounts.fetchesExpired - before.fetchesExpired, 0, "a fetch waited out its expiry");
    assert.equal((await jsm.consumers.list(STREAM).next()).length, 0, "no consumer left behind");
  } finally {
    await nc.close();
    await nats.stop();
  }
});
