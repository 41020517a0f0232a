/**
 * The typed message bus: every component publishes, requests and consumes Protobuf messages through it.
 * Subjects are derived from the message itself (its catalogue address, correlation id and entity ids), so a
 * message can only travel on the subject its type belongs to. A message that cannot be decoded is moved to
 * the dead-letter stream with the reason and never stops a subscriber or a consumer.
 */
import { create, type DescMessage, type MessageShape } from "@bufbuild/protobuf";
import { timestampNow } from "@bufbuild/protobuf/wkt";
import {
  AckPolicy,
  DeliverPolicy,
  jetstream,
  type JetStreamClient,
  jetstreamManager,
  type JetStreamPublishOptions,
  type JsMsg,
  type PubAck,
} from "@nats-io/jetstream";
import {
  errors,
  headers,
  type Msg,
  nanos,
  type NatsConnection,
  type Subscription,
} from "@nats-io/transport-node";
import { getLogger } from "@logtape/logtape";
import type { Metadata } from "../pb/common_pb.ts";
import { MetadataSchema } from "../pb/common_pb.ts";
import { ackBatchOf } from "./ack_batch.ts";
import { addressOf, type BusMessage, schemaOf } from "./catalogue.ts";
import { decodeAs, decodeBySubject, encode } from "./codec.ts";
import { DEFAULT_MAX_PAYLOAD_BYTES } from "./auth.ts";
import { errorMessage, LeftUnanswered, MessageTooLargeError, PublishError, RequestError } from "./errors.ts";
import { DLQ_REDACTED_HEADER, redactDeadLetter } from "./dead_letter_redaction.ts";
export { DLQ_REDACTED_HEADER } from "./dead_letter_redaction.ts";
import { buildSubject, deadLetterSubject } from "./subjects.ts";
import { pullUntilStopped } from "./durable_pull.ts";

const RECONNECTED = Symbol("reconnected");
/** Room left in `max_payload` for a message's headers (a JetStream publish's are well under 1 KiB). */
const HEADER_ROOM = 16 * 1024;

/** Header carrying why a message was dead-lettered, and the subject it came from. */
export const DLQ_REASON_HEADER = "Compozy-Dlq-Reason";
export const DLQ_SUBJECT_HEADER = "Compozy-Dlq-Subject";
/** Header of an error reply to a request: the responder could not handle it. */
export const ERROR_REPLY_HEADER = "Compozy-Error";

export interface BusOptions {
  /** The component name written into every Metadata this bus mints. */
  source: string;
  /** How long a JetStream publish keeps retrying through an outage before it fails loudly; default 30 s. */
  publishDeadlineMs?: number;
}

export interface PublishOptions {
  /** Deduplication id; default the message's metadata.event_id. */
  msgId?: string;
  expect?: JetStreamPublishOptions["expect"];
  /** No attempt is sent after this time (ms since the epoch), if it is before the publish deadline. */
  deadline?: number;
  /**
   * Ends the retries: once aborted, no attempt is sent again and the publish rejects (a PublishError whose cause
   * is the signal's reason) at once. An attempt already sent may still be stored.
   */
  signal?: AbortSignal;
}

export interface RequestOptions {
  /** One attempt's wait for a reply; default 5 s. */
  timeoutMs?: number;
  /** Total time across retries of an unanswered request; default = timeoutMs (one attempt). */
  deadlineMs?: number;
  /**
   * Ends the request (it rejects with the signal's reason): its reply is no longer wanted, and it must not be
   * sent again at a reconnect (the caller sent it elsewhere).
   */
  signal?: AbortSignal;
  /** Told of each unanswered attempt that is tried again (e.g. to log a wait for a responder to come back). */
  onRetry?: (attempt: number, error: unknown, elapsedMs: number) => void;
  /** Awaited before the request is sent again at a reconnect; what it throws ends the request. */
  beforeResend?: () => Promise<void>;
}

/** What a JetStream handler wants done with its message. */
export type Outcome = { ack: true } | { nakDelayMs: number } | { term: string };

export interface Delivery {
  subject: string;
  /** The message's sequence in its stream. */
  streamSequence: number;
  /** 1 for the first delivery. */
  deliveryCount: number;
  /** Extends the ack deadline while a long handler works. */
  working(): void;
}

const log = getLogger(["compozy", "nats", "bus"]);
/**
 * The connection's own ups and downs. Log sinks that publish over NATS skip this category: news of the
 * connection sent over that connection would reach the bus only after the outage it reports.
 */
export const CONNECTION_LOG_CATEGORY = ["compozy", "nats", "connection"] as const;
const connectionLog = getLogger([...CONNECTION_LOG_CATEGORY]);

/**
 * How long one pull request of a consumer lives before the client replaces it. The client's default (30 s)
 * meant that a pull lost with a restarting or failed-over NATS node stalled a consumer for that long.
 */
export const CONSUME_EXPIRES_MS = 5_000;
/**
 * The server's heartbeat on an idle pull: after two missed ones (~2 s) the client pulls again. The cost is
 * one small message a second per idle consumer.
 */
export const CONSUME_HEARTBEAT_MS = 1_000;
/** A message whose handler failed comes back after a delay that grows with each delivery up to this. */
export const MAX_RETRY_DELAY_MS = 2_000;

/** The delay before a failed delivery comes back: 100 ms, doubling per delivery, at most MAX_RETRY_DELAY_MS. */
export function retryDelayMs(deliveryCount: number): number {
  return Math.min(100 * 2 ** Math.min(Math.max(deliveryCount - 1, 0), 8), MAX_RETRY_DELAY_MS);
}

export interface ConsumeOptions<M> {
  stream: string;
  durable: string;
  filterSubject?: string;
  /** Messages this rejects (by subject and stream sequence) are acknowledged unread (no decode, no handler). */
  accept?: (subject: string, streamSequence: number) => boolean;
  /** Redelivery after this long without an ack; default 30 s. */
  ackWaitMs?: number;
  maxAckPending?: number;
  /** Messages pulled at once; default 256. */
  batch?: number;
  handler: (message: M, delivery: Delivery) => Promise<Outcome | void> | Outcome | void;
}

export interface Consumer {
  stop(): Promise<void>;
}

interface Addressable {
  metadata?: Metadata;
  workflow?: { id: string; execId: string };
  task?: { execId: string };
  agent?: { execId: string };
  tool?: { execId: string };
}

/**
 * The subject a catalogued message travels on. The entity id is the execution id of the message's
 * component, except for a WorkflowTrigger, which names the workflow definition.
 */
export function subjectOf(message: BusMessage): string {
  const address = addressOf(message.$typeName);
  if (!address) throw new Error(`${message.$typeName} has no subject: it is not in the message catalogue`);
  const m = message as Addressable;
  const correlationId = m.metadata?.correlationId ?? "";
  let id: string | undefined;
  if (address.component === "workflow") {
    id = address.type === "trigger" ? m.workflow?.id : m.workflow?.execId;
  } else {
    id = m[address.component]?.execId;
  }
  return buildSubject({
    correlationId,
    component: address.component,
    kind: address.kind,
    id: id ?? "",
    type: address.type,
  });
}

/** How long a report of NATS going away waits for a stop that explains it (see Bus.reportOutage). */
export const OUTAGE_REPORT_DELAY_MS = 1_000;

export class Bus {
  readonly js: JetStreamClient;
  private readonly publishDeadlineMs: number;

  /** Requests in flight, woken at a reconnect; each removes itself when it ends, so none outlives its request. */
  private readonly reconnectListeners = new Set<() => void>();

  constructor(readonly nc: NatsConnection, readonly options: BusOptions) {
    this.js = jetstream(nc);
    this.publishDeadlineMs = options.publishDeadlineMs ?? 30_000;
    this.watchReconnects();
  }

  private stopping = false;

  /**
   * Marks the start of an orderly stop. From then on NATS going away is expected (at Ctrl-C the managed
   * nats-server gets the terminal's SIGINT too, and may exit before its clients), so it is no warning.
   */
  beginStop(): void {
    this.stopping = true;
  }

  /**
   * Runs `report` (a warning that NATS went away) {@linkcode OUTAGE_REPORT_DELAY_MS} from now, unless an
   * orderly stop has begun by then: at Ctrl-C the server may close the connection before this process has
   * handled its own SIGINT. Returns a function that runs it at once instead (still unless stopping), for
   * an event that must be reported after it, such as the reconnect.
   */
  reportOutage(report: () => void): () => void {
    let pending = true;
    const run = () => {
      if (!pending) return;
      pending = false;
      clearTimeout(timer);
      if (this.stopping) connectionLog.debug("NATS went away while stopping");
      else report();
    };
    const timer = setTimeout(run, OUTAGE_REPORT_DELAY_MS);
    Deno.unrefTimer(timer);
    return run;
  }

  /** Wakes the requests in flight at every reconnect: they are sent again. */
  private async watchReconnects(): Promise<void> {
    let reportNow = () => {};
    for await (const status of this.nc.status()) {
      if (status.type === "disconnect") {
        reportNow = this.reportOutage(() =>
          connectionLog.warn("Lost the connection to NATS ({server}); reconnecting", {
            server: status.server,
          })
        );
      }
      if (status.type !== "reconnect") continue;
      reportNow();
      connectionLog.info("Reconnected to NATS ({server})", { server: status.server });
      for (const wake of this.reconnectListeners) wake();
    }
  }

  /**
   * Calls `wake` after every reconnect (core messages sent while disconnected are lost, so a subscriber
   * that must not miss one reads the state again). Returns the function that stops the calls.
   */
  onReconnect(wake: () => void): () => void {
    this.reconnectListeners.add(wake);
    return () => this.reconnectListeners.delete(wake);
  }

  /** A new Metadata for a message of this component. */
  metadata(correlationId: string, eventId: string = crypto.randomUUID()): Metadata {
    return create(MetadataSchema, {
      correlationId,
      eventId,
      source: this.options.source,
      time: timestampNow(),
    });
  }

  /**
   * Publishes to JetStream and waits for the stream's acknowledgement. Through an outage it retries with the
   * same message id (so a publish that did land is not stored twice) until the publish deadline, then throws
   * PublishError: a message is stored or the caller knows it is not.
   */
  async publish(message: BusMessage, options: PublishOptions = {}): Promise<PubAck> {
    const msgId = options.msgId ?? message.metadata?.eventId;
    return await this.publishRaw(
      subjectOf(message),
      encodeMessage(message),
      msgId,
      options.expect,
      undefined,
      options.deadline,
      options.signal,
    );
  }

  /**
   * The largest message body this connection may publish: the server's `max_payload` less HEADER_ROOM, which
   * a JetStream publish's headers fit in.
   */
  maxBody(): number {
    return this.maxPayload() - HEADER_ROOM;
  }

  /** The server's `max_payload`: the largest message, headers included, this connection may send. */
  private maxPayload(): number {
    return this.nc.info?.max_payload ?? DEFAULT_MAX_PAYLOAD_BYTES;
  }

  /** Publishes already-encoded bytes to JetStream with the same retry policy as {@link publish}. */
  async publishRaw(
    subject: string,
    data: Uint8Array,
    msgId?: string,
    expect?: JetStreamPublishOptions["expect"],
    hdrs?: Record<string, string>,
    deadlineAt = Infinity,
    signal?: AbortSignal,
  ): Promise<PubAck> {
    // What can never be stored fails at once, not after retries. max_payload counts the headers too (the
    // message id, expectations, a caller's own), so the body must leave them room.
    const maxBytes = this.maxBody();
    if (data.length > maxBytes) throw new MessageTooLargeError(subject, data.length, maxBytes);
    const deadline = Math.min(Date.now() + this.publishDeadlineMs, deadlineAt);
    let h;
    if (hdrs) {
      h = headers();
      for (const [k, v] of Object.entries(hdrs)) h.set(k, v);
    }
    let attempt = 0;
    let delay = 50;
    while (true) {
      if (signal?.aborted) throw publishEnded(subject, attempt, signal);
      attempt++;
      try {
        const sent = this.js.publish(subject, data, {
          msgID: msgId,
          expect,
          headers: h,
          timeout: Math.max(100, Math.min(2_000, deadline - Date.now())),
        });
        return signal ? await unlessAborted(sent, signal) : await sent;
      } catch (e) {
        if (signal?.aborted) throw publishEnded(subject, attempt, signal);
        // Refused by the client or server as over max_payload all the same: final too, never a PublishError
        // (which makes a writer give up and replay, to be refused again, forever).
        if (isMaxPayloadError(e)) {
          throw new MessageTooLargeError(subject, data.length, maxBytes, { cause: e });
        }
        if (!isTransientNatsError(e) || Date.now() + delay >= deadline) {
          throw new PublishError(
            `Publish to '${subject}' failed after ${attempt} attempt(s): ${errorMessage(e)}`,
            subject,
            attempt,
            { cause: e },
          );
        }
        await sleep(delay, signal);
        delay = Math.min(delay * 2, 1_000);
      }
    }
  }

  /** Publishes on core NATS without waiting: for notifications whose loss costs nothing (e.g. live views). */
  publishCore(message: BusMessage): void {
    this.nc.publish(subjectOf(message), encodeMessage(message));
  }

  /**
   * {@link publishCore} when `message` fits one message (see maxBody); false, and nothing sent, when it does
   * not. Encodes once: a history event checked with `fits` and then published was encoded twice.
   */
  publishCoreIfFits(message: BusMessage): boolean {
    const data = encodeMessage(message);
    if (data.byteLength > this.maxBody()) return false;
    this.nc.publish(subjectOf(message), data);
    return true;
  }

  /**
   * Sends a request/reply command on core NATS and decodes the reply. An unanswered request (no responder, or
   * no reply in time) is retried until the deadline; an error reply from the responder is not. A request in
   * flight when the connection is re-established is sent again at once: a reply sent while the server was
   * down is lost. The responder may therefore see a request twice; request/reply commands are idempotent
   * or at-least-once by contract (ARCHITECTURE.md, "Durability").
   */
  async request<R extends DescMessage>(
    message: BusMessage,
    replySchema: R,
    options: RequestOptions = {},
  ): Promise<MessageShape<R>> {
    const subject = subjectOf(message);
    const data = encodeMessage(message);
    // Like a publish's: a request over max_payload can never be sent, so it fails at once, not as unanswered.
    const maxBytes = this.maxPayload();
    if (data.length > maxBytes) throw new MessageTooLargeError(subject, data.length, maxBytes);
    const timeout = options.timeoutMs ?? 5_000;
    const startedAt = Date.now();
    const deadline = startedAt + (options.deadlineMs ?? timeout);
    const signal = options.signal;
    let delay = 50;
    let attempt = 0;
    while (true) {
      signal?.throwIfAborted();
      attempt++;
      let reply: Msg | typeof RECONNECTED;
      try {
        const sent = this.nc.request(subject, data, {
          timeout: Math.max(50, Math.min(timeout, deadline - Date.now())),
        });
        const reconnected = Promise.withResolvers<typeof RECONNECTED>();
        const wake = () => reconnected.resolve(RECONNECTED);
        const aborted = Promise.withResolvers<never>();
        const abort = () => aborted.reject(signal!.reason);
        this.reconnectListeners.add(wake);
        signal?.addEventListener("abort", abort, { once: true });
        try {
          reply = await Promise.race([sent, reconnected.promise, aborted.promise]);
        } catch (e) {
          if (signal?.aborted) sent.catch(() => {}); // Its reply, if any, is not wanted any more.
          throw e;
        } finally {
          this.reconnectListeners.delete(wake);
          signal?.removeEventListener("abort", abort);
        }
        if (reply === RECONNECTED) {
          sent.catch(() => {}); // Its reply, if any, comes too late to matter.
          if (Date.now() < deadline) {
            await options.beforeResend?.();
            continue;
          }
          throw new Error("the connection was re-established and the deadline passed");
        }
      } catch (e) {
        if (signal?.aborted) throw signal.reason;
        if (isMaxPayloadError(e)) {
          throw new MessageTooLargeError(subject, data.length, maxBytes, { cause: e });
        }
        if (!isTransientNatsError(e) || Date.now() + delay >= deadline) {
          throw new RequestError(
            `Request on '${subject}' got no reply after ${attempt} attempt(s): ${errorMessage(e)}`,
            subject,
            { cause: e },
          );
        }
        options.onRetry?.(attempt, e, Date.now() - startedAt);
        await sleep(delay);
        delay = Math.min(delay * 2, 1_000);
        continue;
      }
      const refused = reply.headers?.get(ERROR_REPLY_HEADER);
      if (refused) throw new RequestError(`Request on '${subject}' was refused: ${refused}`, subject);
      return decodeAs(replySchema, `${subject} (reply)`, reply.data);
    }
  }

  /**
   * Answers request/reply commands on `filter` (in a queue group, so several processes share the work). A
   * request that cannot be decoded is dead-lettered and answered with an error reply; so is one whose handler
   * throws, so that no requester waits for nothing.
   */
  serve<R extends DescMessage>(
    filter: string,
    queue: string,
    replySchema: R,
    handler: (
      message: MessageShape<DescMessage>,
      subject: string,
    ) => Promise<MessageShape<R>> | MessageShape<R>,
  ): Subscription {
    return this.nc.subscribe(filter, {
      queue,
      callback: (err, msg) => {
        if (err) return;
        // answer() settles every outcome itself; this only keeps an unexpected rejection from ending the process.
        this.answer(msg, replySchema, handler).catch(() => {});
      },
    });
  }

  private async answer<R extends DescMessage>(
    msg: Msg,
    replySchema: R,
    handler: (
      message: MessageShape<DescMessage>,
      subject: string,
    ) => Promise<MessageShape<R>> | MessageShape<R>,
  ): Promise<void> {
    let decoded;
    try {
      decoded = decodeBySubject(msg.subject, msg.data);
    } catch (e) {
      await this.deadLetter(msg.subject, msg.data, errorMessage(e)).catch(() => {/* replied below anyway */});
      respondError(msg, errorMessage(e));
      return;
    }
    try {
      const reply = await handler(decoded, msg.subject);
      msg.respond(encode(replySchema, reply));
    } catch (e) {
      if (e instanceof LeftUnanswered) return;
      respondError(msg, errorMessage(e));
    }
  }

  /** Subscribes on core NATS; undecodable messages are dead-lettered and skipped. */
  subscribe(
    filter: string,
    handler: (message: MessageShape<DescMessage>, subject: string) => void,
  ): Subscription {
    return this.nc.subscribe(filter, {
      callback: (err, msg) => {
        if (err) return;
        let decoded;
        try {
          decoded = decodeBySubject(msg.subject, msg.data);
        } catch (e) {
          this.deadLetter(msg.subject, msg.data, errorMessage(e)).catch(() => {});
          return;
        }
        handler(decoded, msg.subject);
      },
    });
  }

  /**
   * Consumes a JetStream stream with a durable pull consumer shared by every process that uses the same
   * name. The consumer is created if missing. A message that cannot be decoded is dead-lettered and
   * terminated; a handler that throws gets its message redelivered with a growing delay.
   */
  async consume<M extends MessageShape<DescMessage>>(options: ConsumeOptions<M>): Promise<Consumer> {
    const jsm = await jetstreamManager(this.nc);
    const ackWait = options.ackWaitMs ?? 30_000;
    const createConsumer = async () => {
      await jsm.consumers.add(options.stream, {
        durable_name: options.durable,
        ack_policy: AckPolicy.Explicit,
        deliver_policy: DeliverPolicy.All,
        ack_wait: nanos(ackWait),
        max_ack_pending: options.maxAckPending ?? 10_000,
        max_deliver: -1,
        filter_subject: options.filterSubject,
      });
    };
    await createConsumer();
    // Acks ride on the connection's next write (ack_batch.ts).
    const acks = ackBatchOf(this.nc);
    const pull = await pullUntilStopped({
      durable: options.durable,
      recreate: createConsumer,
      connectionClosed: () => this.nc.isClosed(),
      open: async () =>
        await (await this.js.consumers.get(options.stream, options.durable)).consume({
          max_messages: options.batch ?? 256,
          expires: CONSUME_EXPIRES_MS,
          idle_heartbeat: CONSUME_HEARTBEAT_MS,
        }),
      each: (msg) => {
        if (options.accept && !options.accept(msg.subject, msg.seq)) {
          acks.ack(msg);
          return;
        }
        this.handleDelivery(
          options.durable,
          msg,
          options.handler as ConsumeOptions<MessageShape<DescMessage>>["handler"],
        );
      },
    });
    return {
      stop: async () => {
        await pull.stop();
        acks.sendNow();
      },
    };
  }

  private async handleDelivery(
    durable: string,
    msg: JsMsg,
    handler: ConsumeOptions<MessageShape<DescMessage>>["handler"],
  ): Promise<void> {
    let decoded;
    try {
      decoded = decodeBySubject(msg.subject, msg.data);
    } catch (e) {
      try {
        await this.deadLetter(msg.subject, msg.data, errorMessage(e));
        msg.term(); // No reason: see handleDelivery.
      } catch {
        // The DLQ is unreachable: leave the message for redelivery rather than lose it.
        msg.nak(1_000);
      }
      return;
    }
    const deliveryCount = msg.info.deliveryCount;
    try {
      const outcome = await handler(decoded, {
        subject: msg.subject,
        streamSequence: msg.seq,
        deliveryCount,
        working: () => msg.working(),
      });
      if (!outcome || "ack" in outcome) ackBatchOf(this.nc).ack(msg);
      else if ("nakDelayMs" in outcome) msg.nak(outcome.nakDelayMs);
      // Without the reason (it is logged and dead-lettered): nats-server 2.9 does not read `+TERM <reason>`,
      // and such a message stayed in the consumer's pending list for ever, its ack floor stuck behind it.
      else msg.term();
    } catch (error) {
      // At-least-once: the handler failed, so the message comes back, a little later each time.
      const delayMs = retryDelayMs(deliveryCount);
      log.warn(
        "{durable}: handling {subject} failed (delivery {delivery}); retried in {delay_ms} ms: {error}",
        {
          durable,
          subject: msg.subject,
          delivery: deliveryCount,
          delay_ms: delayMs,
          error,
        },
      );
      msg.nak(delayMs);
    }
  }

  /**
   * Moves a message to `compozy.dlq.<component>.<kind>` with the reason and original subject in headers.
   * Commands that carry secrets are redacted first (dead_letter_redaction.ts).
   */
  async deadLetter(subject: string, data: Uint8Array, reason: string): Promise<void> {
    const tokens = subject.split(".");
    const component = safeToken(tokens[2]);
    const kind = safeToken(tokens[3]);
    const kept = redactDeadLetter(subject, data);
    await this.publishRaw(deadLetterSubject(component, kind), kept.data, undefined, undefined, {
      [DLQ_REASON_HEADER]: reason.slice(0, 1_000),
      [DLQ_SUBJECT_HEADER]: subject,
      ...(kept.redacted === undefined ? {} : { [DLQ_REDACTED_HEADER]: kept.redacted }),
    });
  }
}

function encodeMessage(message: BusMessage): Uint8Array {
  return encode(schemaOf(message.$typeName), message as never);
}

function respondError(msg: Msg, reason: string): void {
  if (!msg.reply) return;
  const h = headers();
  h.set(ERROR_REPLY_HEADER, reason.replace(/[\r\n]+/g, " ").slice(0, 1_000));
  msg.respond(new Uint8Array(), { headers: h });
}

function safeToken(token: string | undefined): string {
  return token && /^[A-Za-z0-9_-]+$/.test(token) ? token : "unknown";
}

/**
 * Failures that another attempt may not meet: time-outs, a server that is restarting (no responders,
 * "jetstream is not enabled" while JetStream starts or stops), a connection being re-established.
 */
/** The client's refusal of a message over the server's `max_payload` (nats-core protocol.ts). */
function isMaxPayloadError(e: unknown): boolean {
  return e instanceof Error && /max_payload/i.test(e.message);
}

export function isTransientNatsError(e: unknown): boolean {
  return e instanceof errors.TimeoutError || e instanceof errors.NoRespondersError ||
    e instanceof errors.RequestError || e instanceof errors.ConnectionError ||
    (e instanceof Error &&
      /timeout|no responders|disconnect|reconnect|jetstream is not enabled|JetStreamNotEnabled|503/i.test(
        `${e.name} ${e.message}`,
      ));
}

/** Waits `ms`, or less when `signal` aborts meanwhile (the caller checks it). */
function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const woken = () => {
      clearTimeout(timer);
      resolve();
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", woken);
      resolve();
    }, ms);
    signal?.addEventListener("abort", woken, { once: true });
  });
}

/** `promise`, or a rejection as soon as `signal` aborts (the promise's own outcome is then dropped). */
function unlessAborted<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) {
    promise.catch(() => {});
    return Promise.reject(signal.reason);
  }
  return new Promise<T>((resolve, reject) => {
    const aborted = () => {
      promise.catch(() => {});
      reject(signal.reason);
    };
    signal.addEventListener("abort", aborted, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener("abort", aborted));
  });
}

/** A publish whose retries were ended by its caller's signal (see PublishOptions.signal). */
function publishEnded(subject: string, attempts: number, signal: AbortSignal): PublishError {
  return new PublishError(
    `Publish to '${subject}' ended by its caller after ${attempts} attempt(s): ${
      errorMessage(signal.reason)
    }`,
    subject,
    attempts,
    { cause: signal.reason },
  );
}
