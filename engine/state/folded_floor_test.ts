import assert from "node:assert/strict";
import { FoldedFloor } from "./folded_floor.ts";

/** A server floor the test moves, counting the requests. */
function server(initial = 0) {
  const s = {
    floor: initial,
    asked: 0,
    read: () => {
      s.asked++;
      return Promise.resolve(s.floor);
    },
  };
  return s;
}

Deno.test("folded floor: events all taken here need no request", async () => {
  const s = server();
  const floor = new FoldedFloor({ serverFloor: s.read, maxWaitMs: 10_000, pollMs: 1 });
  for (let seq = 1; seq <= 5; seq++) floor.take(seq);
  floor.folded(2);
  // Taken but not yet folded counts: the state manager waits for its own pending writes itself.
  assert.equal(await floor.before(6), true);
  assert.equal(s.asked, 0);
  floor.stop();
});

Deno.test("folded floor: an event another engine took is waited for until the server acknowledges it", async () => {
  const s = server();
  const floor = new FoldedFloor({ serverFloor: s.read, maxWaitMs: 10_000, pollMs: 1 });
  for (const seq of [1, 2, 4]) {
    floor.take(seq);
    floor.folded(seq);
  }
  let reached: boolean | undefined;
  const waiting = floor.before(5).then((r) => reached = r);
  while (s.asked < 3) await new Promise((r) => setTimeout(r, 1));
  assert.equal(reached, undefined);
  s.floor = 3; // The other engine acknowledged event 3.
  assert.equal(await waiting, true);
  floor.stop();
});

Deno.test("folded floor: an event that failed here is a gap until it is acknowledged", async () => {
  const s = server();
  const floor = new FoldedFloor({ serverFloor: s.read, maxWaitMs: 10_000, pollMs: 1 });
  floor.take(1);
  floor.take(2);
  floor.folded(1);
  floor.released(2);
  let reached: boolean | undefined;
  const waiting = floor.before(3).then((r) => reached = r);
  while (s.asked < 3) await new Promise((r) => setTimeout(r, 1));
  assert.equal(reached, undefined);
  // It came back here and was folded: covered without the server.
  floor.take(2);
  floor.folded(2);
  assert.equal(await waiting, true);
  floor.stop();
});

Deno.test("folded floor: the wait is bounded and a failing server floor is retried", async () => {
  let asked = 0;
  const floor = new FoldedFloor({
    serverFloor: () => {
      asked++;
      return Promise.reject(new Error("no responders"));
    },
    maxWaitMs: 50,
    pollMs: 1,
  });
  assert.equal(await floor.before(10), false);
  assert.ok(asked > 1, `asked ${asked} times`);
  floor.stop();
});

Deno.test("folded floor: stop ends the waits", async () => {
  const s = server();
  const floor = new FoldedFloor({ serverFloor: s.read, maxWaitMs: 60_000, pollMs: 1 });
  const waiting = floor.before(10);
  floor.stop();
  assert.equal(await waiting, false);
});
