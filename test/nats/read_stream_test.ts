/**
 * Reading a stream back against a real nats-server: the right messages in order, from a given sequence,
 * the same answer whether the read walks message by message or finishes through a consumer, and no
 * consumer left behind by reads that fail half-way.
 */
import assert from "node:assert/strict";
import { jetstream, type JetStreamClient, jetstreamManager } from "@nats-io/jetstream";
import {
  connectNats,
  lastSequenceOf,
  READ_RECOVERY_TRIES,
  readStream,
  StreamReadError,
} from "../../pkg/nats/mod.ts";
import { startTestNats } from "../support/nats.ts";

const STREAM = "READS";
const encoder = new TextEncoder();
const text = (data: Uint8Array) => new TextDecoder().decode(data);

/** An AbortSignal that reports a time-out on its `n`-th check: a failure injected at a chosen point. */
function failingOnCheck(n: number): AbortSignal {
  let checks = 0;
  return {
    aborted: false,
    throwIfAborted() {
      if (++checks >= n) throw new Error(`injected time-out at check ${n}`);
    },
  } as unknown as AbortSignal;
}

Deno.test("readStream", async (t) => {
  const nats = await startTestNats();
  const nc = await connectNats(nats.url, { name: "read-stream-test" });
  const js = jetstream(nc);
  const jsm = await jetstreamManager(nc);
  await jsm.streams.add({ name: STREAM, subjects: ["r.>"] });
  // Two runs interleaved; run "a" has 20 messages over 4 subjects, rewriting each subject 5 times.
  for (let i = 0; i < 40; i++) {
    const run = i % 2 === 0 ? "a" : "b";
    await js.publish(`r.${run}.k${i % 8}`, encoder.encode(`${run}${i}`));
  }
  const consumerCount = async () => (await jsm.consumers.list(STREAM).next()).length;

  try {
    await t.step("every matching message in stream order, walking or through a consumer", async () => {
      const expected = Array.from({ length: 20 }, (_, j) => `a${2 * j}`);
      for (const walkLimit of [64, 5, 0]) {
        const read = await readStream(js, STREAM, "r.a.*", { walkLimit });
        assert.deepEqual(read.map((m) => text(m.data)), expected, `walkLimit ${walkLimit}`);
        assert.ok(read.every((m, i) => i === 0 || m.seq > read[i - 1].seq));
        assert.ok(read.every((m) => m.time instanceof Date && m.subject.startsWith("r.a.")));
      }
      assert.deepEqual(await readStream(js, STREAM, "r.none.*"), []);
    });

    await t.step("a read stops at its limit or its byte bound, walking or through a consumer", async () => {
      const expected = Array.from({ length: 20 }, (_, j) => `a${2 * j}`);
      for (const walkLimit of [64, 3, 0]) {
        const limited = await readStream(js, STREAM, "r.a.*", { walkLimit, limit: 7 });
        assert.deepEqual(limited.map((m) => text(m.data)), expected.slice(0, 7), `walkLimit ${walkLimit}`);
        // Each message is 2 or 3 bytes: the read stops once 10 bytes are read (a fetched batch may pass it).
        const bounded = await readStream(js, STREAM, "r.a.*", { walkLimit, maxBytes: 10 });
        const bytes = bounded.reduce((sum, m) => sum + m.data.byteLength, 0);
        assert.ok(bytes >= 10 && bounded.length < 20, `${bounded.length} messages, ${bytes} bytes`);
        assert.deepEqual(bounded.map((m) => text(m.data)), expected.slice(0, bounded.length));
      }
    });

    await t.step("a read can start where the matches begin", async () => {
      // Message i has sequence i + 1; "r.a.k0" was last written by message 32.
      assert.equal(await lastSequenceOf(js, STREAM, "r.a.k0"), 33);
      assert.equal(await lastSequenceOf(js, STREAM, "r.none.k0"), undefined);
      const read = await readStream(js, STREAM, "r.a.*", { fromSeq: 33 });
      assert.deepEqual(read.map((m) => text(m.data)), ["a32", "a34", "a36", "a38"]);
    });

    await t.step("1,000 reads that fail at every point leave no consumer behind", async () => {
      assert.equal(await consumerCount(), 0);
      let failed = 0;
      for (let i = 0; i < 1_000; i++) {
        // Failures fall in the walk (checks 1-5) and after the read's consumer was created (check 6).
        const signal = failingOnCheck(1 + (i % 6));
        await readStream(js, STREAM, "r.a.*", { walkLimit: 4, signal }).catch(() => failed++);
      }
      assert.equal(failed, 1_000);
      assert.equal(await consumerCount(), 0);
    });

    await t.step("a read that walks creates no consumer at all", async () => {
      const created: string[] = [];
      const sub = nc.subscribe(`$JS.API.CONSUMER.CREATE.${STREAM}.>`, {
        callback: (_e, m) => void created.push(m.subject),
      });
      const legacy = nc.subscribe(`$JS.API.CONSUMER.CREATE.${STREAM}`, {
        callback: (_e, m) => void created.push(m.subject),
      });
      await nc.flush();
      for (let i = 0; i < 50; i++) await readStream(js, STREAM, "r.b.*");
      await nc.flush();
      sub.unsubscribe();
      legacy.unsubscribe();
      assert.deepEqual(created, []);
    });
  } finally {
    await nc.close();
    await nats.stop();
  }
});

/**
 * `js` whose read consumers run `before` ahead of each fetch: a point chosen in the middle of a read, where
 * the test restarts the server or deletes the consumer, the read's own calls going to the real server.
 */
function interruptedBeforeFetch(
  js: JetStreamClient,
  before: (fetchNo: number, consumer: string) => Promise<void>,
): JetStreamClient {
  let fetches = 0;
  const consumers = {
    get: async (stream: string, name: string) => {
      const consumer = await js.consumers.get(stream, name);
      return new Proxy(consumer, {
        get(target, prop) {
          if (prop !== "fetch") return Reflect.get(target, prop);
          return async (opts: Parameters<typeof target.fetch>[0]) => {
            await before(++fetches, name);
            return await target.fetch(opts);
          };
        },
      });
    },
  };
  return new Proxy(js, {
    get: (target, prop) => prop === "consumers" ? consumers : Reflect.get(target, prop),
  });
}

Deno.test("readStream through a nats-server restart", async (t) => {
  const nats = await startTestNats();
  const nc = await connectNats(nats.url, { name: "read-stream-restart-test" });
  const js = jetstream(nc);
  const jsm = await jetstreamManager(nc);
  await jsm.streams.add({ name: STREAM, subjects: ["r.>"] });
  // 2,500 messages: a read through a consumer fetches them in three batches (at most 1,000 each).
  const expected: string[] = [];
  for (let i = 0; i < 2_500; i++) {
    expected.push(`m${i}`);
    js.publish(`r.c.k${i % 5}`, encoder.encode(`m${i}`));
  }
  await nc.flush();
  while ((await jsm.streams.info(STREAM)).state.messages < 2_500) await new Promise((r) => setTimeout(r, 50));
  const consumerCount = async () => (await jsm.consumers.list(STREAM).next()).length;

  try {
    await t.step("a read goes on from its last message after its consumer died with the server", async () => {
      const restarted: number[] = [];
      const reader = interruptedBeforeFetch(js, async (fetchNo) => {
        if (fetchNo !== 2) return;
        await nats.restart({ crash: true });
        restarted.push(fetchNo);
      });
      const read = await readStream(reader, STREAM, "r.c.*", { walkLimit: 10 });
      assert.deepEqual(restarted, [2], "the server was restarted between the read's first two fetches");
      assert.equal(read.length, expected.length);
      assert.deepEqual(read.map((m) => text(m.data)), expected);
      assert.ok(read.every((m, i) => i === 0 || m.seq > read[i - 1].seq));
      assert.equal(await consumerCount(), 0, "the re-created consumer was deleted; the first died");
    });

    await t.step("a reader that cannot be re-created ends with StreamReadError and its cause", async () => {
      // Every consumer the read creates is deleted before its first fetch: re-creating it never helps.
      const reader = interruptedBeforeFetch(js, async (_, name) => {
        await jsm.consumers.delete(STREAM, name);
      });
      const error = await readStream(reader, STREAM, "r.c.*", { walkLimit: 10 }).then(
        () => assert.fail("the read succeeded"),
        (e) => e,
      );
      assert.ok(error instanceof StreamReadError, `${error}`);
      assert.equal(error.tries, READ_RECOVERY_TRIES);
      assert.match(`${error.cause}`, /consumer not found|heartbeats missed/i);
      assert.equal(await consumerCount(), 0);
    });
  } finally {
    await nc.close();
    await nats.stop();
  }
});
