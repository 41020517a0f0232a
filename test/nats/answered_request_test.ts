/**
 * An answered request builds no Error (answered_request.ts): nats-core's stock resolver rejected every
 * answered request's promise with a new RequestError. Against a real nats-server: answers, time-outs and
 * no-responders still come out as before.
 */
import assert from "node:assert/strict";
import { errors, TimeoutError } from "@nats-io/nats-core";
import { RequestOne } from "@nats-io/nats-core/internal";
import { connectNats } from "../../pkg/nats/connection.ts";
import { startTestNats } from "../support/nats.ts";

Deno.test("an answered request rejects nothing and builds no Error", async () => {
  const nats = await startTestNats();
  const nc = await connectNats(nats.url, { name: "answered-request-test" });
  // Counts the rejections a request's promise is given after it was answered (the stock path's Error).
  const rejected: unknown[] = [];
  const stockCancel = RequestOne.prototype.cancel;
  RequestOne.prototype.cancel = function (this: RequestOne, err?: Error) {
    const reject = this.deferred.reject;
    this.deferred.reject = (e?: unknown) => (rejected.push(e), reject(e));
    return stockCancel.call(this, err);
  };
  try {
    const sub = nc.subscribe("echo", { callback: (_e, m) => void m.respond(m.data) });
    for (let i = 0; i < 20; i++) {
      const answer = await nc.request("echo", new TextEncoder().encode(`${i}`), { timeout: 10_000 });
      assert.equal(answer.string(), `${i}`);
    }
    assert.deepEqual(rejected, [], "an answered request's promise was rejected");
    sub.unsubscribe();
    await assert.rejects(nc.request("nobody.listens", undefined, { timeout: 10_000 }), (e: unknown) => {
      assert.ok(e instanceof errors.RequestError && e.isNoResponders(), String(e));
      return true;
    });
    nc.subscribe("silent", { callback: () => {} });
    await assert.rejects(nc.request("silent", undefined, { timeout: 200 }), TimeoutError);
  } finally {
    RequestOne.prototype.cancel = stockCancel;
    await nc.close();
    await nats.stop();
  }
});
