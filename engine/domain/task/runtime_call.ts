/**
 * A tool or agent call sent to the runtimes (a core request to their queue group), watched while it runs.
 * The runtime process that takes the call answers on the call's own subject while it runs it
 * (pkg/runtime/held_calls.ts): its answers are the call's heartbeat. Every second the engine asks that subject,
 * and sends the same request again at once (same call id, so a runtime that still runs it joins it), to a live
 * runtime, instead of waiting for the call's whole time limit, when
 * - "no responders" comes twice, at least {@link RuntimeCallTiming.goneAfterMs} apart: the server's definite
 *   word that no runtime holds the call any more (its process died: a kill -9 closes its socket at once; or the
 *   request was lost with a NATS node);
 * - or the holder has answered nothing for {@link SILENT_AFTER_MS} (10 s) while the engine's own server
 *   answered it: a runtime whose process died or froze (SIGSTOP, a hung host) with its socket left open, so
 *   that the server keeps its subscription and never says "no responders" (it drops such a connection only
 *   after two missed pings, minutes by default). A runtime whose event loop is starved for a moment (an answer
 *   that times out now and then) keeps its calls; one starved for 10 s is taken for dead.
 *
 * A call is at-least-once (ARCHITECTURE.md, "Durability"): a runtime that takes longer than the first question
 * to pick up its request, that loses NATS for longer than `goneAfterMs`, or that freezes for longer than
 * `silentAfterMs` and then wakes up, may run a call that was sent again elsewhere: the call id is the same, for
 * idempotent tools to dedupe on. A call whose runtime vanishes {@link RuntimeCallTiming.maxVanished} times (a
 * tool that kills the process running it) fails `runtime_unavailable` rather than taking every runtime down in
 * turn.
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
  /**
   * A holder that answers no question for this long, while the engine's server answers the engine, is gone
   * (a process frozen or dead with its socket open). Default {@link SILENT_AFTER_MS}.
   */
  silentAfterMs: number;
  /** How many runtimes that took the call may vanish before it fails `runtime_unavailable`. */
  maxVanished: number;
}

/**
 * How long the runtime holding a call may answer none of the engine's questions before the call is sent again
 * elsewhere. Ten questions' worth: a runtime whose event loop stalls for a few seconds (a large reply parsed, a
 * GC pause at load) keeps its call, while a frozen one delays the call by about 10–12 s (the first question
 * left unanswered, then 10 s), not by the call's whole limit. Fail-over timings: docs/operations.md.
 */
export const SILENT_AFTER_MS = 10_000;

export const DEFAULT_RUNTIME_CALL_TIMING: RuntimeCallTiming = {
  firstAskMs: 1_000,
  askEveryMs: 1_000,
  askTimeoutMs: 1_000,
  goneAfterMs: 1_000,
  silentAfterMs: SILENT_AFTER_MS,
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
  /**
   * A runtime that took this call fell silent. Its subscriptions stay with the server: it is still in the
   * runtimes' queue group, so a later send may reach it again, and its holder subscription keeps "no
   * responders" away. A later send that no runtime ever answers for has most likely reached it again: it is
   * sent once more after `goneAfterMs` of silence instead of `silentAfterMs`, and not counted as a vanishing.
   */
  let frozenHolder = false;
  const vanishedOnce = (how: string) => {
    vanished++;
    if (vanished >= timing.maxVanished) {
      throw new RequestError(
        `the runtime running call ${callId} (${message.$typeName}) vanished ${vanished} times (the last one ${how})`,
        callHolderSubject(callId),
      );
    }
    deadline = Date.now() + options.timeoutMs;
  };
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
    const unansweredSilenceMs = frozenHolder ? timing.goneAfterMs : timing.silentAfterMs;
    const watch = watchHolder(bus.nc, callId, timing, unansweredSilenceMs, signal);
    let outcome: MessageShape<R> | Unheld;
    try {
      outcome = await Promise.race([reply, watch]);
    } finally {
      abandon.abort(SEND_GIVEN_UP);
      reply.catch(() => {}); // Settled or abandoned: either way its outcome was taken or is not wanted.
      watch.catch(() => {});
    }
    if (!(outcome instanceof Unheld)) return outcome;
    if (outcome.silent && (outcome.wasHeld || !frozenHolder)) {
      vanishedOnce("fell silent");
      frozenHolder = true;
      log.warn(
        "The runtime running call {call} answered nothing for {ms} ms (frozen, or dead with its socket open); sending the call again",
        { call: callId, ms: outcome.wasHeld ? timing.silentAfterMs : unansweredSilenceMs },
      );
    } else if (outcome.silent) {
      log.info(
        "No runtime answered for call {call} for {ms} ms since it was sent again (most likely it reached the silent runtime again); sending it again",
        { call: callId, ms: unansweredSilenceMs },
      );
    } else if (outcome.wasHeld) {
      vanishedOnce("closed its connection");
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

/**
 * No runtime holds the call; `wasHeld`: one answered for it during this send. `silent`: one still subscribes
 * for it but answered nothing for the silence allowed (a process frozen, or dead with its socket open).
 */
class Unheld {
  constructor(readonly wasHeld: boolean, readonly silent = false) {}
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
 * Resolves once no runtime holds call `callId` (no responders on questions at least `goneAfterMs` apart), or
 * once its holder has been silent for `silentAfterMs` (for `unansweredSilenceMs` while no question of this
 * send has been answered); never resolves while one answers; rejects when `signal` aborts.
 */
async function watchHolder(
  nc: NatsConnection,
  callId: string,
  timing: RuntimeCallTiming,
  unansweredSilenceMs: number,
  signal: AbortSignal,
): Promise<Unheld> {
  const subject = callHolderSubject(callId);
  await sleep(timing.firstAskMs, signal);
  let firstMiss: number | undefined;
  /** When the first question of the holder's current silence was asked. */
  let silentSince: number | undefined;
  let wasHeld = false;
  while (true) {
    const asked = Date.now();
    const answer = await ask(nc, subject, timing.askTimeoutMs);
    switch (answer) {
      case "no responders":
        firstMiss ??= asked;
        if (asked - firstMiss >= timing.goneAfterMs) return new Unheld(wasHeld);
        break;
      case "answered":
        firstMiss = undefined;
        silentSince = undefined;
        wasHeld = true;
        break;
      case "silent":
        firstMiss = undefined;
        silentSince ??= asked;
        if (Date.now() - silentSince >= (wasHeld ? timing.silentAfterMs : unansweredSilenceMs)) {
          return new Unheld(wasHeld, true);
        }
        break;
      case "unknown":
        // The engine's own link is in question: what it did not hear says nothing about the holder.
        firstMiss = undefined;
        silentSince = undefined;
        break;
    }
    signal.throwIfAborted();
    await sleep(Math.max(0, asked + timing.askEveryMs - Date.now()), signal);
  }
}

/**
 * What one question on the holder subject told: "no responders" (the server's word that no connection
 * subscribes), "answered", "silent" (it timed out, and the engine's server then answered a ping in time: a
 * subscriber that does not answer), or "unknown" (the engine's own connection failed or did not answer either:
 * a reconnect, the engine's server frozen).
 */
type HolderAnswer = "no responders" | "answered" | "silent" | "unknown";

async function ask(nc: NatsConnection, subject: string, timeoutMs: number): Promise<HolderAnswer> {
  try {
    await nc.request(subject, undefined, { timeout: timeoutMs });
    return "answered";
  } catch (e) {
    if (e instanceof errors.NoRespondersError || (e instanceof errors.RequestError && e.isNoResponders())) {
      return "no responders";
    }
    if (!(e instanceof errors.TimeoutError)) return "unknown";
  }
  return await serverAnswers(nc, timeoutMs) ? "silent" : "unknown";
}

/** Whether the engine's server answers a ping within `timeoutMs` (the connection is up and read). */
async function serverAnswers(nc: NatsConnection, timeoutMs: number): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<false>((resolve) => timer = setTimeout(() => resolve(false), timeoutMs));
  const flushed = nc.flush().then(() => true, () => false); // A closed or failing connection: not answered.
  try {
    return await Promise.race([flushed, late]);
  } finally {
    clearTimeout(timer);
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
