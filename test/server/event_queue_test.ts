/** The bounded queue between a live stream's follow and its writer (server/sse.ts). */
import assert from "node:assert/strict";
import { EventQueue, QUEUED_DELTAS_BOUND, QUEUED_EVENTS_BOUND } from "../../server/sse.ts";

const event = (seq: number) => ({ seq, subject: "s", type: "task.success", time: "t", data: {} });
const delta = (seq: number) => ({ subject: "s", type: "agent.delta" as const, time: "t", data: { seq } });

Deno.test("the queue holds the follow back once full and lets it go once the writer took half", async () => {
  const queue = new EventQueue();
  for (let seq = 1; seq < QUEUED_EVENTS_BOUND; seq++) assert.equal(queue.push(event(seq)), undefined);
  let released = false;
  const held = queue.push(event(QUEUED_EVENTS_BOUND));
  assert.ok(held, "a full queue answers with a promise");
  held.then(() => released = true);
  const reader = queue[Symbol.asyncIterator]();
  for (let taken = 1; taken < QUEUED_EVENTS_BOUND / 2; taken++) {
    assert.equal((await reader.next()).value.seq, taken);
    await Promise.resolve();
    assert.equal(released, false, `released after ${taken} taken`);
  }
  assert.equal((await reader.next()).value.seq, QUEUED_EVENTS_BOUND / 2);
  await held;
  assert.equal(released, true);
});

Deno.test("deltas past their bound are dropped and counted; stored events are never dropped", async () => {
  const queue = new EventQueue();
  for (let seq = 0; seq < QUEUED_DELTAS_BOUND + 5; seq++) queue.pushDelta(delta(seq));
  assert.equal(queue.droppedDeltas, 5);
  queue.push(event(1));
  queue.close();
  const seen = [];
  for await (const item of queue) seen.push(item);
  assert.equal(seen.length, QUEUED_DELTAS_BOUND + 1);
  assert.deepEqual(seen.at(-1), event(1));
});

Deno.test("closing the queue lets a held-back follow go on (to find its stream gone)", async () => {
  const queue = new EventQueue();
  let held: Promise<void> | undefined;
  for (let seq = 1; !held; seq++) held = queue.push(event(seq));
  queue.close();
  await held;
});
