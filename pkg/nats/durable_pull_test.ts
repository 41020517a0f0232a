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
  const failing = await pullUntilStopped({
    durable: "d",
    reopenDelayMs: 60_000,
    open: () =>
      attempts++ === 0 ? Promise.resolve(fakeLoop([], new Error("gone"))) : Promise.reject(new Error("down")),
    recreate: () => Promise.resolve(),
    each: () => {},
  });
  while (attempts < 2) await new Promise((r) => setTimeout(r, 1));
  // The stop wakes the 60 s retry delay: the test would leak its timer otherwise.
  await failing.stop();
  assert.equal(attempts, 2);
});
