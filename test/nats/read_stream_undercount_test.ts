/**
 * A read through a consumer whose pending count is far too low: from a start past some matching subject's
 * last message, nats-server 2.9.10 sums a wildcard consumer's pending in a Go map's order (1600 or 2500 of
 * 3400 here). The read stopped where the count ran out and took the rest by single gets, one round trip per
 * message (1800 for one read). The consumer delivers what the count misses: the read must take it from there.
 * When other runs wrote after the read's last match (the usual case for an execution's history), going on
 * with a batch sized to the end sequence ended every such read on a stalled fetch (FETCH_STALL_MS, then a
 * get): the read knows where its matches end with one get of the last (brk28).
 */
import assert from "node:assert/strict";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { connectNats, readStream, readStreamCounts } from "../../pkg/nats/mod.ts";
import { startTestNats } from "../support/nats.ts";

const LINES = 900;

/** Twelve reads from 2001 of a run's six subjects, two at a time; `othersAfter` messages of another run follow. */
async function readUnderCounted(stream: string, othersAfter: number): Promise<void> {
  const nats = await startTestNats();
  const nc = await connectNats(nats.url, { name: `read-stream-${stream}` });
  const js = jetstream(nc);
  const jsm = await jetstreamManager(nc);
  try {
    await jsm.streams.add({ name: stream, subjects: ["c.*.*.evts.*.*"] });
    // Six subjects two at a time: each pair interleaves, and ends before the next begins.
    const body = new TextEncoder().encode("x".repeat(200));
    for (const pair of [["t0", "t1"], ["t2", "t3"], ["t4", "t5"]]) {
      for (let i = 0; i < LINES; i++) for (const id of pair) nc.publish(`c.run.task.evts.${id}.done`, body);
    }
    for (let i = 0; i < othersAfter; i++) nc.publish(`c.other.task.evts.t${i % 3}.done`, body);
    await nc.flush();
    const before = { ...readStreamCounts };
    // The count depends on a map's order: twelve reads meet a short one.
    for (let read = 0; read < 12; read++) {
      const messages = await readStream(js, stream, "c.run.*.evts.*.*", { walkLimit: 0, fromSeq: 2001 });
      assert.deepEqual(messages.map((m) => m.seq), [...Array(6 * LINES - 2000).keys()].map((i) => i + 2001));
    }
    assert.ok(readStreamCounts.countChecks > before.countChecks, "no read met a short pending count");
    // A fetch may pause past FETCH_STALL_MS on a loaded machine and go on after its check: only a read that
    // ended there is the defect.
    assert.equal(readStreamCounts.endedOnStall - before.endedOnStall, 0, "a read ended on a stalled fetch");
    assert.equal(readStreamCounts.singleGets - before.singleGets, 0, "messages were read one get at a time");
    assert.equal(readStreamCounts.fetchesExpired - before.fetchesExpired, 0, "a fetch waited out its expiry");
    assert.equal((await jsm.consumers.list(stream).next()).length, 0, "no consumer left behind");
  } finally {
    await nc.close();
    await nats.stop();
  }
}

Deno.test("a read whose consumer under-reports its pending count reads on through the consumer", async () => {
  await readUnderCounted("READS_UNDERCOUNT", 0);
});

Deno.test("an under-counted read followed by other runs' messages ends without a stalled fetch", async () => {
  await readUnderCounted("READS_UNDERCOUNT_TAIL", 50);
});
