/** Shared core subscriptions on a real nats-server: one per subject per connection, ended by the last listener. */
import assert from "node:assert/strict";
import { startTestNats } from "../../test/support/nats.ts";
import { connectNats } from "./connection.ts";
import { subscribeShared } from "./shared_subscription.ts";

Deno.test("subscribeShared: listeners of one subject share a subscription; the last to leave ends it", async () => {
  const nats = await startTestNats();
  const nc = await connectNats(nats.url, { name: "listener" });
  const publisher = await connectNats(nats.url, { name: "publisher" });
  const seen: string[] = [];
  // The listener's SUB/UNSUB and the publisher's PUB travel on two connections: the server orders them only once
  // the listener's side is flushed, so a publish right after an unsubscribe could still reach the old subscription.
  const roundTrip = async (data: string) => {
    await nc.flush();
    publisher.publish("shared.a", data);
    await publisher.flush();
    await nc.flush();
  };
  try {
    const a = subscribeShared(nc, "shared.a", (_err, msg) => seen.push(`a:${msg.string()}`));
    const b = subscribeShared(nc, "shared.a", (_err, msg) => seen.push(`b:${msg.string()}`));
    await nc.flush();
    await roundTrip("1");
    // One delivery for two listeners.
    assert.equal(nc.stats().inMsgs, 1);
    assert.deepEqual(seen, ["a:1", "b:1"]);
    a.unsubscribe();
    a.unsubscribe(); // a second call changes nothing: b still listens
    await roundTrip("2");
    assert.deepEqual(seen, ["a:1", "b:1", "b:2"]);
    b.unsubscribe();
    await roundTrip("3");
    assert.equal(nc.stats().inMsgs, 2, "the subscription ended with its last listener");
    // A listener added after that subscribes again.
    subscribeShared(nc, "shared.a", (_err, msg) => seen.push(`c:${msg.string()}`));
    await nc.flush();
    await roundTrip("4");
    assert.deepEqual(seen, ["a:1", "b:1", "b:2", "c:4"]);
  } finally {
    await publisher.close();
    await nc.close();
    await nats.stop();
  }
});
