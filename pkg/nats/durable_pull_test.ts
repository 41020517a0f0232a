import assert from "node:assert/strict";
import type { ConsumerMessages, JsMsg } from "@nats-io/jetstream";
import { pullUntilStopped } from "./durable_pull.ts";

/** A pull loop that yields `subjects`, then either ends with `endsWith` or waits until it is closed. */
function fakeLoop(subjects: string[], endsWith?: Error): ConsumerMessages {
  let close!: () => void;
  const closedByOwner = new Promise<void>((resolve) => close = resolve);
  return {
    async *[Symbol.asyncIterator]() {
      for (const subject of subjects) yield { subject } as JsMsg;
      if (!endsWith) await closedByOwner;
    },
    closed: () => Promise.resolve(endsWith),
    close: () => {
      close();
      return Promise.resolve();
    },
    status: async function* () {},
  } as unknown as ConsumerMessages;
}

Deno.test("a pull loop the client ended is opened again, after the consumer is created again", async () => {
  const loops = [fakeLoop(["a"], new Error("400 Bad Request")), fakeLoop(["b"])];
  const seen: string[] = [];
  let recreated = 0;
  let secondDelivered!: () => void;
  const delivered = new Promise<void>((resolve) => secondDelivered = resolve);
  const pull = await pullUntilStopped({
    durable: "d",
    open: () => Promise.resolve(loops.shift()!),
    recreate: () => {
      recreated++;
      return Promise.resolve();
    },
    each: (msg) => {
      seen.push(msg.subject);
      if (msg.subject === "b") secondDelivered();
    },
  });
  await delivered;
  await pull.stop();
  assert.deepEqual(seen, ["a", "b"]);
  assert.equal(recreated, 1);
  assert.equal(loops.length, 0);
});

Deno.test("a loop that cannot be opened again is retried until it opens, and a stop ends the retries", async () => {
  let opens = 0;
  let reopened!: () => void;
  const third = new Promise<void>((resolve) => reopened = resolve);
  const pull = await pullUntilStopped({
    durable: "d",
    reopenDelayMs: 5,
    open: () => {
      opens++;
      if (opens === 1) return Promise.resolve(fakeLoop([], new Error("sub error")));
      if (opens === 2) return Promise.reject(new Error("no responders"));
      reopened();
      return Promise.resolve(fakeLoop([]));
    },
    recreate: () => Promise.resolve(),
    each: () => {},
  });
  await third;
  await pull.stop();
  assert.equal(opens, 3);

  let attempts = 0;
  const waiting = await pullUntilStopped({
    durable: "d",
    reopenDelayMs: 60_000,
    open: () =>
      attempts++ === 0 ? Promise.resolve(fakeLoop([], new Error("gone"))) : Promise.reject(new Error("down")),
    recreate: () => Promise.resolve(),
    each: () => {},
  });
  await new Promise((r) => setTimeout(r, 20));
  const stopAt = performance.now();
  // The stop wakes the 60 s wait before the next opening: the test would leak its timer otherwise.
  await waiting.stop();
  assert.ok(performance.now() - stopAt < 1_000);
  assert.equal(attempts, 1);
});

const tick = () => new Promise((r) => setTimeout(r, 0));

Deno.test("a pull loop the client ends at once after every opening is opened again at most once per delay", async () => {
  // A server that answers every pull with a 400 (nats.js ends the loop on any 400) while the consumer exists:
  // recreate and open succeed each time. Before, each reopening followed at once, one error line each.
  let opens = 0;
  const pull = await pullUntilStopped({
    durable: "d",
    reopenDelayMs: 100,
    open: async () => {
      opens++;
      await tick();
      return fakeLoop([], new Error("400 Bad Request"));
    },
    recreate: () => Promise.resolve(),
    each: () => {},
  });
  await new Promise((r) => setTimeout(r, 350));
  await pull.stop();
  assert.ok(opens >= 2 && opens <= 5, `opened ${opens} times in 350 ms with 100 ms between openings`);
});

Deno.test("a stop() that comes while a reopening fails returns without waiting for the next attempt", async () => {
  let failRecreate!: () => void;
  let recreateStarted!: () => void;
  const started = new Promise<void>((r) => recreateStarted = r);
  const pull = await pullUntilStopped({
    durable: "d",
    reopenDelayMs: 3_000,
    open: () => Promise.resolve(fakeLoop([], new Error("sub error"))),
    recreate: () => {
      recreateStarted();
      return new Promise<void>((_, reject) => failRecreate = () => reject(new Error("no responders")));
    },
    each: () => {},
  });
  await started;
  const stopAt = performance.now();
  const stopped = pull.stop();
  await tick();
  failRecreate();
  await stopped;
  const ms = performance.now() - stopAt;
  assert.ok(ms < 1_000, `stop() took ${Math.round(ms)} ms`);
});
