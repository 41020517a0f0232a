/**
 * nats-core 3.4's `RequestOne.resolver` ends every answered request with `cancel()`, which rejects the
 * request's promise (already resolved, so a no-op) with a fresh `RequestError("cancelled")`: an `Error`, and
 * its stack trace, per request. Every JetStream publish and KV write is such a request; under W2 of the peer
 * benchmark that was 5% of the engine's CPU (a V8 profile, 2026-12-03). An answered request here clears its
 * timer and leaves the muxed inbox as before, without the `Error`; an error or a cancel takes the stock path.
 *
 * @module
 */
import type { Msg } from "@nats-io/nats-core";
import { RequestOne } from "@nats-io/nats-core/internal";

const stockResolver = RequestOne.prototype.resolver;

/** Applied once per process, before the first connection (connect.ts imports this module). */
RequestOne.prototype.resolver = function (this: RequestOne, err: Error | null, msg: Msg): void {
  if (err) return stockResolver.call(this, err, msg);
  this.timer?.cancel();
  this.deferred.resolve(msg);
  this.mux.cancel(this);
};
