/**
 * A tool or agent call sent to the runtimes (a core request to their queue group), watched while it runs.
 * The runtime process that takes the call answers on the call's own subject while it runs it
 * (pkg/runtime/held_calls.ts). Every second the engine asks that subject; "no responders" twice, at least
 * {@link RuntimeCallTiming.goneAfterMs} apart, is the server's definite word that no runtime holds the call any
 * more (its process died: a kill -9 closes its socket at once; or the request was lost with a NATS node), and
 * the same request (same call id, so a runtime that still runs it joins it) is sent again at once, to a live
 * runtime, instead of waiting for the call's whole time limit. A question that times out (a runtime whose event
 * loop is starved) counts as held: a busy runtime's calls are never sent twice.
 *
 * A call is at-least-once (ARCHITECTURE.md, "Durability"): a runtime that takes longer than the first question
 * to pick up its request, or that loses NATS for longer than `goneAfterMs`, may run a call that was sent
 * again elsewhere. A call whose runtime vanishes {@link RuntimeCallTiming.maxVanished} times (a tool that kills
 * the process running it) fails `runtime_unavailable` rather than taking every runtime down in turn.
 *
 * @module
 */
import type { DescMessage, MessageShape } from "@bufbuild/protobuf";
import { errors, type NatsConnection } from "@nats-io/transport-node";
import { getLogger } from "../../../pkg/logger/mod.ts";
import { type Bus, type BusMessage, callHolderSubject, RequestError } from "../../../pkg/nats/mod.ts";

const log = getLogger(["engine", "runtime-call"]);

export interface RuntimeCallTiming {
  /** The first question, after the send: a live runtime has picked the request up and holds it by then. */
  firstAskMs: number;
  /** Between questions. */
  askEveryMs: number;
  /** How long a holder's answer may take; a later one counts as held (a busy runtime). */
  askTimeoutMs: number;
  /** "No responders" must last at least this long (a runtime on a NATS node that died reconnects meanwhile). */
  goneAfterMs: number;
  /** How many runtimes that took the call may vanish before it fails `runtime_unavailable`. */
  maxVanished: number;
}

export const DEFAULT_RUNTIME_CALL_TIMING: RuntimeCallTiming = {
  firstAskMs: 1_000,
  askEveryMs: 1_000,
  askTimeoutMs: 1_000,
  goneAfterMs: 1_000,
  maxVanished: 3,
};

export interface RuntimeCallOptions {
  /** One send's wait for the reply, and its deadline across retries of "no responders". */
  timeoutMs: number;
  /** The caller gave the call up (a decided race, a canceled task): no question, no further send. */
  signal?: AbortSignal;
  timing?: RuntimeCallTiming;
  /** The request to send again, when it must change (an agent's carries the turns recorded meanwhile). */
  resend?: () => Promise<BusMessage>;
  /**
   * Awaited before the call is sent again; what it throws ends the call. A driver's: it must still hold the
   * execution's lease and have the attempt's task.started stored (a send after a reconnect came from a driver
   * whose lease was suspended, and its task.started had been refused: outside review E3).
   */
  beforeResend?: () => Promise<void>;
}

/**
 * Sends `message` (a call with id `callId`) and waits for its reply, sending it again when no runtime holds it.
 * Each runtime that took the call and vanished gives the next send a whole `timeoutMs`; a call no runtime took
 * (none running, or the request was lost) is sent again within the same `timeoutMs`, as "no responders" is.
 */
export async function requestRuntimeCall<R extends DescMessage>(
  bus: Bus,
  message: BusMessage,
  callId: string,
  replySchema: R,
  options: RuntimeCallOptions,
): Promise<MessageShape<R>> {
  const timing = options.timing ?? DEFAULT_RUNTIME_CALL_TIMING;
  let deadline = Date.now() + options.timeoutMs;
  let vanished = 0;
  while (true) {
    const abandon = new AbortController();
    const signal = options.signal ? AbortSignal.any([options.signal, abandon.signal]) : abandon.signal;
    const remaining = Math.max(1, deadline - Date.now());
    const reply = bus.request(message, replySchema, {
      timeoutMs: remaining,
      deadlineMs: remaining,
      signal,
      beforeResend: options.beforeResend,
    });
    const watch = watchHolder(bus.nc, callId, timing, signal);
    let outcome: MessageShape<R> | Unheld;
    try {
      outcome = await Promise.race([reply, watch]);
    } finally {
      abandon.abort(SEND_GIVEN_UP);
      reply.catch(() => {}); // Settled or abandoned: either way its outcome was taken or is not wanted.
      watch.catch(() => {});
    }
    if (!(outcome instanceof Unheld)) return outcome;
    if (outcome.wasHeld) {
      vanished++;
      if (vanished >= timing.maxVanished) {
        throw new RequestError(
          `the runtime running call ${callId} (${message.$typeName}) vanished ${vanished} times`,
          callHolderSubject(callId),
        );
      }
      deadline = Date.now() + options.timeoutMs;
      log.warn(
        "The runtime running call {call} is gone (no responders for {ms} ms); sending the call again",
        {
          call: callId,
          ms: timing.goneAfterMs,
        },
      );
    } else {
      log.info("No runtime took call {call} (no responders for {ms} ms); sending the call again", {
        call: callId,
        ms: timing.goneAfterMs,
      });
    }
    await options.beforeResend?.();
    options.signal?.throwIfAborted();
    if (options.resend) message = await options.resend();
  }
}

/** No runtime holds the call; `wasHeld`: one answered for it before. */
class Unheld {
  constructor(readonly wasHeld: boolean) {}
}

/** The send was given up: its reply is not wanted (another send, or the caller's abort). */
class CallGivenUp extends Error {
  override name = "CallGivenUp";
}

/**
 * One instance for every send: it only ends the send's watch and request, whose rejections are dropped, and
 * an `Error` (with its stack) built per call was 1.2% of the engine's CPU under W1 (V8 profile, 2026-12-03).
 */
const SEND_GIVEN_UP = new CallGivenUp("the send was given up (answered, sent again, or its call given up)");

/**
 * Resolves once no runtime holds call `callId` (no responders on questions at least `goneAfterMs` apart); never
 * resolves while one does; rejects when `signal` aborts.
 */
async function watchHolder(
  nc: NatsConnection,
  callId: string,
  timing: RuntimeCallTiming,
  signal: AbortSignal,
): Promise<Unheld> {
  const subject = callHolderSubject(callId);
  await sleep(timing.firstAskMs, signal);
  let firstMiss: number | undefined;
  let wasHeld = false;
  while (true) {
    const asked = Date.now();
    if (await unheld(nc, subject, timing.askTimeoutMs)) {
      firstMiss ??= asked;
      if (asked - firstMiss >= timing.goneAfterMs) return new Unheld(wasHeld);
    } else {
      firstMiss = undefined;
      wasHeld = true;
    }
    signal.throwIfAborted();
    await sleep(Math.max(0, asked + timing.askEveryMs - Date.now()), signal);
  }
}

/** True only for the server's "no responders"; an answer, a time-out or a lost connection count as held. */
async function unheld(nc: NatsConnection, subject: string, timeoutMs: number): Promise<boolean> {
  try {
    await nc.request(subject, undefined, { timeout: timeoutMs });
    return false;
  } catch (e) {
    return e instanceof errors.NoRespondersError || (e instanceof errors.RequestError && e.isNoResponders());
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    signal.throwIfAborted();
    const timer = setTimeout(() => {
      signal.removeEventListener("abort", stop);
      resolve();
    }, ms);
    const stop = () => {
      clearTimeout(timer);
      reject(signal.reason);
    };
    signal.addEventListener("abort", stop, { once: true });
  });
}
