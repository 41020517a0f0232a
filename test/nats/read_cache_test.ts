/**
 * History reads that remember what they read (pkg/nats/read_cache.ts), against a real nats-server: a read
 * again asks only for what was added, returns what an uncached read returns, and starts over when the stream
 * no longer holds what it remembers (deleted and created again, or its first messages gone).
 */
import assert from "node:assert/strict";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import {
  clearReadCache,
  connectNats,
  readCacheCounts,
  readStream,
  readStreamCached,
  type StreamMessage,
} from "../../pkg/nats/mod.ts";
import { startTestNats } from "../support/nats.ts";

const STREAM = "CACHED";
const encoder = new TextEncoder();
const texts = (messages: StreamMessage[]) => messages.map((m) => new TextDecoder().decode(m.data));

Deno.test("readStreamCached", async (t) => {
  const nats = await startTestNats();
  const nc = await connectNats(nats.url, { name: "read-cache-test" });
  const js = jetstream(nc);
  const jsm = await jetstreamManager(nc);
  const publish = (subject: string, text: string) => js.publish(subject, encoder.encode(text));
  const requests = async <T>(read: () => Promise<T>): Promise<[T, number]> => {
    const before = nc.stats().outMsgs;
    const result = await read();
    return [result, nc.stats().outMsgs - before];
  };
  try {
    await jsm.streams.add({ name: STREAM, subjects: ["c.>"] });
    for (let i = 0; i < 30; i++) await publish(`c.${i % 2 === 0 ? "a" : "b"}.k${i % 6}`, `${i}`);

    await t.step(
      "a read again asks for what was added since, and returns what an uncached read does",
      async () => {
        const [first, firstRequests] = await requests(() => readStreamCached(js, STREAM, "c.a.*"));
        assert.deepEqual(texts(first), texts(await readStream(js, STREAM, "c.a.*")));
        assert.equal(first.length, 15);
        const [again, againRequests] = await requests(() => readStreamCached(js, STREAM, "c.a.*"));
        assert.deepEqual(texts(again), texts(first));
        // One get that finds nothing after the last message, one that checks the first is still stored.
        assert.equal(againRequests, 2, `${againRequests} requests (the first read took ${firstRequests})`);

        await publish("c.a.k0", "new-a");
        await publish("c.b.k1", "new-b");
        const [grown, grownRequests] = await requests(() => readStreamCached(js, STREAM, "c.a.*"));
        assert.deepEqual(texts(grown), [...texts(first), "new-a"]);
        assert.deepEqual(texts(grown), texts(await readStream(js, STREAM, "c.a.*")));
        assert.equal(grownRequests, 3);
      },
    );

    await t.step("a read from a later sequence is served from an earlier read of the filter", async () => {
      const all = await readStreamCached(js, STREAM, "c.a.*");
      const from = all[5].seq;
      const hits = readCacheCounts.hits;
      const later = await readStreamCached(js, STREAM, "c.a.*", { fromSeq: from });
      assert.equal(readCacheCounts.hits, hits + 1);
      assert.deepEqual(texts(later), texts(await readStream(js, STREAM, "c.a.*", { fromSeq: from })));
      // An earlier start than remembered is read whole.
      const misses = readCacheCounts.misses;
      const bFrom = (await readStream(js, STREAM, "c.b.*"))[3].seq;
      await readStreamCached(js, STREAM, "c.b.*", { fromSeq: bFrom });
      const whole = await readStreamCached(js, STREAM, "c.b.*");
      assert.equal(readCacheCounts.misses, misses + 2);
      assert.deepEqual(texts(whole), texts(await readStream(js, STREAM, "c.b.*")));
    });

    await t.step("a stream deleted and created again is read anew", async () => {
      const before = await readStreamCached(js, STREAM, "c.a.*");
      assert.ok(before.length > 0);
      await jsm.streams.delete(STREAM);
      await jsm.streams.add({ name: STREAM, subjects: ["c.>"] });
      // Fewer messages than before, on other subjects at the remembered sequences.
      await publish("c.x.k0", "x0");
      await publish("c.a.k0", "again");
      const invalidated = readCacheCounts.invalidated;
      const after = await readStreamCached(js, STREAM, "c.a.*");
      assert.deepEqual(texts(after), ["again"]);
      assert.equal(readCacheCounts.invalidated, invalidated + 1);
    });

    await t.step("a read whose first remembered message is gone (expired, purged) starts over", async () => {
      for (let i = 0; i < 4; i++) await publish("c.a.k1", `more${i}`);
      const before = await readStreamCached(js, STREAM, "c.a.*");
      assert.deepEqual(texts(before), ["again", "more0", "more1", "more2", "more3"]);
      // As max_age removes the oldest: the first two matches go.
      await jsm.streams.deleteMessage(STREAM, before[0].seq);
      await jsm.streams.deleteMessage(STREAM, before[1].seq);
      const after = await readStreamCached(js, STREAM, "c.a.*");
      assert.deepEqual(texts(after), ["more1", "more2", "more3"]);
    });

    await t.step("a history longer than the walk is continued by single gets, not a consumer", async () => {
      for (let i = 0; i < 80; i++) await publish("c.long.k", `l${i}`);
      const first = await readStreamCached(js, STREAM, "c.long.*");
      assert.equal(first.length, 80);
      await publish("c.long.k", "l80");
      const [again, againRequests] = await requests(() => readStreamCached(js, STREAM, "c.long.*"));
      assert.equal(again.length, 81);
      assert.equal(againRequests, 3);
      assert.equal((await jsm.consumers.list(STREAM).next()).length, 0);
    });

    await t.step("a remembered start is not looked up again, unless what is remembered is gone", async () => {
      await publish("c.s.start", "s0");
      await publish("c.s.k", "s1");
      let lookUps = 0;
      const lookUp = async () => {
        lookUps++;
        return (await jsm.streams.getMessage(STREAM, { last_by_subj: "c.s.start" }))?.seq;
      };
      const read = () =>
        readStreamCached(js, STREAM, "c.s.*", { startAtLastOf: "c.s.start", fromSeq: lookUp });
      assert.deepEqual(texts(await read()), ["s0", "s1"]);
      assert.equal(lookUps, 1);
      const [again, requestsAgain] = await requests(read);
      assert.deepEqual(texts(again), ["s0", "s1"]);
      assert.equal(lookUps, 1);
      assert.equal(requestsAgain, 2);
      // A later start stored since: the read begins there.
      await publish("c.s.start", "s2");
      await publish("c.s.k", "s3");
      assert.deepEqual(texts(await read()), ["s2", "s3"]);
      assert.equal(lookUps, 1);
      // The stream created again: what is remembered is dropped, and the start looked up.
      await jsm.streams.delete(STREAM);
      await jsm.streams.add({ name: STREAM, subjects: ["c.>"] });
      await publish("c.s.start", "t0");
      await publish("c.s.k", "t1");
      assert.deepEqual(texts(await read()), ["t0", "t1"]);
      assert.equal(lookUps, 2);
    });

    await t.step("another client, or a cleared one, remembers nothing", async () => {
      clearReadCache(js);
      const misses = readCacheCounts.misses;
      await readStreamCached(js, STREAM, "c.a.*");
      await readStreamCached(jetstream(nc), STREAM, "c.a.*");
      assert.equal(readCacheCounts.misses, misses + 2);
    });
  } finally {
    await nc.close();
    await nats.stop();
  }
});
