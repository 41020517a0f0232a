/**
 * With no nats-server on PATH and no NATS_SERVER_BIN, the error says how to install one. Run by
 * missing_nats_binary_test.ts in a process of its own, whose environment has neither (own_process.ts).
 */
import assert from "node:assert/strict";
import { NatsServerNotFoundError } from "../../pkg/nats/mod.ts";
import { findNatsServerBinary } from "../../pkg/nats/server.ts";

Deno.test("a missing nats-server binary says how to install it", async () => {
  assert.equal(Deno.env.get("NATS_SERVER_BIN"), undefined);
  await assert.rejects(
    findNatsServerBinary(),
    (e) => e instanceof NatsServerNotFoundError && /apt-get install -y nats-server/.test(e.message),
  );
});
