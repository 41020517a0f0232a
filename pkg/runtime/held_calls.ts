/**
 * The tool and agent calls this runtime process is running, by call id (the `execId` the engine gave the
 * call). While a call runs here, this process answers a core NATS request on the call's own subject,
 * `callHolderSubject`: the engine that sent the call asks it every second, and "no responders" (the
 * server's definite answer that no connection subscribes) tells it that the runtime holding the call is gone
 * (a kill -9 closes its socket at once), so that it sends the call again at once instead of waiting for the
 * call's whole time limit (engine/domain/task/runtime_call.ts). These answers are the call's heartbeat: a
 * process that answers none for 10 s (frozen, or dead with its socket open) has its calls sent again too.
 *
 * A call that arrives again while it still runs here (the engine sent it again after a reconnect, or after
 * it took a slow start of this process for a death) joins the running one rather than running it twice.
 *
 * @module
 */
import type { NatsConnection, Subscription } from "@nats-io/transport-node";
import { callHolderSubject } from "../nats/mod.ts";

export class HeldCalls {
  readonly #running = new Map<string, Promise<unknown>>();

  constructor(private readonly nc: NatsConnection) {}

  /**
   * The outcome of call `callId`: of the one running here, or of `start`. Must be called as the call's
   * request is received (synchronously), so that the engine's first question finds it held.
   */
  hold<R>(callId: string, start: () => Promise<R>): Promise<R> {
    if (!callId) return start(); // An engine of before call ids: nothing to answer for.
    const running = this.#running.get(callId);
    if (running) return running as Promise<R>;
    const held: Subscription = this.nc.subscribe(callHolderSubject(callId), {
      callback: (_err, msg) => {
        msg.respond();
      },
    });
    const result = start().finally(() => {
      this.#running.delete(callId);
      // After the reply: the caller answers in the microtasks that follow this one, so a question asked
      // between the unsubscribe and the reply would see no holder for a call whose reply is on its way.
      setTimeout(() => held.unsubscribe(), 0);
    });
    this.#running.set(callId, result);
    return result;
  }

  /**
   * Resolves once no call with an id runs here (those running now, and any started meanwhile). A runtime that
   * stopped taking calls waits for this before it exits, so that its calls end on the code they started with.
   */
  async idle(): Promise<void> {
    while (this.#running.size > 0) {
      await Promise.allSettled(this.#running.values());
      // Past the replies, which the caller sends in the microtasks after each call settles.
      await new Promise((resolve) => setTimeout(resolve, 0));
    }
  }
}
