/**
 * Core subscriptions shared by the parts of one process that listen to the same subject on one connection.
 * nats-server sends a message once for every matching subscription of a connection, so two parts that
 * subscribed to the same subject each had their own copy parsed on the process's event loop: in `compozy dev`
 * the live view and the API's metrics both took every task and workflow start and end (11 of the 70 messages
 * per three-step workflow into the dev process's connection were second copies; issue 11). A listener added
 * for a subject that this process already subscribed to on that connection joins that subscription.
 *
 * @module
 */
import type { Msg, NatsConnection, Subscription } from "@nats-io/nats-core";

/** Called with each message of the subject, or with the error that ended the subscription. */
export type SharedListener = (err: Error | null, msg: Msg) => void;

export interface SharedSubscription {
  /** Removes this listener; the last one to leave ends the subscription on the server. */
  unsubscribe(): void;
}

interface Entry {
  subscription: Subscription;
  listeners: Set<SharedListener>;
}

const bySubject = new WeakMap<NatsConnection, Map<string, Entry>>();

/** Adds `listener` to `subject` on `nc`, subscribing only if no open subscription of this process has it. */
export function subscribeShared(
  nc: NatsConnection,
  subject: string,
  listener: SharedListener,
): SharedSubscription {
  let entries = bySubject.get(nc);
  if (!entries) bySubject.set(nc, entries = new Map());
  let entry = entries.get(subject);
  if (!entry || entry.subscription.isClosed()) {
    const listeners = new Set<SharedListener>();
    entry = {
      listeners,
      subscription: nc.subscribe(subject, { callback: (err, msg) => dispatch(listeners, err, msg) }),
    };
    entries.set(subject, entry);
  }
  const joined = entry;
  // A function of its own, so that one listener added twice is two listeners, each removed on its own.
  const own: SharedListener = (err, msg) => listener(err, msg);
  joined.listeners.add(own);
  return {
    unsubscribe: () => {
      if (!joined.listeners.delete(own) || joined.listeners.size > 0) return;
      joined.subscription.unsubscribe();
      if (entries.get(subject) === joined) entries.delete(subject);
    },
  };
}

/**
 * Each listener in the order it joined. A listener must not throw, as a lone subscription's callback must not:
 * nats-core calls callbacks from its parser, and an error thrown there ends the connection's reader.
 */
function dispatch(listeners: Set<SharedListener>, err: Error | null, msg: Msg): void {
  for (const listener of listeners) listener(err, msg);
}
