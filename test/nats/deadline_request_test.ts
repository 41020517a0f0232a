/**
 * Muxed requests share one deadline timer (deadline_request.ts): nats-core armed a timer per request and
 * rejected every answered request's promise with a new RequestError. Against a real nats-server: answers,
 * time-outs and no-responders come out as before, no timer is made per request, and none is left behind.
 */
import assert from "node:assert/strict";
import { errors, TimeoutError } from "@nats-io/nats-core";
import { connectNats } from "../../pkg/nats/connection.ts";
import { deadlineRequestsForTest } from "../../pkg/nats/transport/deadline_request.ts";
import { startTestNats } from "../support/nats.ts";

Deno.test("requests share one deadline timer; answers, time-outs and no-responders as before", async () => {
  const nats = await startTestNats();
  const nc = await connectNats(nats.url, { name: "deadline-request-test" });
  const enc = new TextEncoder();
  try {
    const sub = nc.subscribe("echo", { callback: (_e, m) => void m.respond(m.data) });
    nc.subscribe("silent", { callback: () => {} });
    // Timers made while 200 requests are in flight, and rejections the answered ones are given afterwards.
    let timers = 0;
    const stockSetTimeout = globalThis.setTimeout;
    globalThis.setTimeout = ((...args: Parameters<typeof setTimeout>) => {
      timers++;
      return stockSetTimeout(...args);
    }) as typeof setTimeout;
    let answers: string[];
    try {
      answers = await Promise.all(
        Array.from(
          { length: 200 },
          (_, i) =>
            nc.request("echo", enc.encode(`${i}`), { timeout: 10_000 + (i % 7) * 100 }).then((m) =>
              m.string()
            ),
        ),
      );
    } finally {
      globalThis.setTimeout = stockSetTimeout;
    }
    assert.deepEqual(answers, Array.from({ length: 200 }, (_, i) => `${i}`));
    assert.ok(timers <= 2, `${timers} timers armed for 200 requests`);
    assert.deepEqual(deadlineRequestsForTest(), { pending: 0, armed: false, held: 0 });

    // Silent subjects time out, each at its own deadline, while answered requests around them resolve.
    const started = performance.now();
    const late = nc.request("silent", undefined, { timeout: 600 });
    const early = nc.request("silent", undefined, { timeout: 200 });
    const answered = nc.request("echo", enc.encode("x"), { timeout: 5_000 });
    assert.equal((await answered).string(), "x");
    await assert.rejects(early, TimeoutError);
    const earlyAt = performance.now() - started;
    await assert.rejects(late, TimeoutError);
    const lateAt = performance.now() - started;
    assert.ok(earlyAt >= 195, `the 200 ms request timed out after ${earlyAt} ms`);
    assert.ok(lateAt >= 595, `the 600 ms request timed out after ${lateAt} ms`);
    assert.deepEqual(deadlineRequestsForTest(), { pending: 0, armed: false, held: 0 });

    sub.unsubscribe();
    await assert.rejects(nc.request("nobody.listens", undefined, { timeout: 10_000 }), (e: unknown) => {
      assert.ok(e instanceof errors.RequestError && e.isNoResponders(), String(e));
      return true;
    });
    assert.deepEqual(deadlineRequestsForTest(), { pending: 0, armed: false, held: 0 });
  } finally {
    await nc.close();
    await nats.stop();
  }
});

Deno.test("a closed connection fails its requests in flight and leaves no timer", async () => {
  const nats = await startTestNats();
  const nc = await connectNats(nats.url, { name: "deadline-request-close-test" });
  try {
    nc.subscribe("silent", { callback: () => {} });
    await nc.flush();
    const inFlight = nc.request("silent", undefined, { timeout: 60_000 });
    assert.deepEqual(deadlineRequestsForTest(), { pending: 1, armed: true, held: 1 });
    const failed = assert.rejects(inFlight, errors.RequestError);
    await nc.close();
    await failed;
    assert.deepEqual(deadlineRequestsForTest(), { pending: 0, armed: false, held: 0 });
  } finally {
    await nats.stop();
  }
});

Deno.test("answered requests do not pile up while another is pending", async () => {
  const nats = await startTestNats();
  const nc = await connectNats(nats.url, { name: "deadline-request-held-test" });
  const enc = new TextEncoder();
  try {
    nc.subscribe("echo", { callback: (_e, m) => void m.respond(m.data) });
    nc.subscribe("silent", { callback: () => {} });
    await nc.flush();
    // Under load some request is always pending: the heap was emptied only when none was, so it held every
    // answered request (and its reply) until that request's own deadline.
    const longest = nc.request("silent", undefined, { timeout: 60_000 });
    const failedLongest = assert.rejects(longest, errors.RequestError);
    const soon = nc.request("silent", undefined, { timeout: 1_500 });
    let mostHeld = 0;
    for (let batch = 0; batch < 20; batch++) {
      const answers = await Promise.all(
        Array.from(
          { length: 100 },
          (_, i) =>
            nc.request("echo", enc.encode(`${batch}.${i}`), { timeout: 60_000 }).then((m) => m.string()),
        ),
      );
      assert.deepEqual(answers, Array.from({ length: 100 }, (_, i) => `${batch}.${i}`));
      mostHeld = Math.max(mostHeld, deadlineRequestsForTest().held);
    }
    // After each batch, 2 pending: the heap keeps at most twice the pending ones and its slack.
    assert.ok(mostHeld <= 2 * 2 + 64, `the heap held ${mostHeld} entries for 2 pending requests`);
    assert.equal(deadlineRequestsForTest().pending, 2);
    // Compactions kept the pending entries and their deadlines.
    await assert.rejects(soon, TimeoutError);
    const { pending, armed } = deadlineRequestsForTest();
    assert.deepEqual({ pending, armed }, { pending: 1, armed: true });
    await nc.close();
    await failedLongest;
    assert.deepEqual(deadlineRequestsForTest(), { pending: 0, armed: false, held: 0 });
  } finally {
    await nats.stop();
  }
});
