/** Errors of the NATS layer. Each names what failed so a log line alone is enough to act on. */

/** A subject token or a whole subject that does not follow `compozy.<corr>.<component>.<kind>.<id>.<type>`. */
export class SubjectError extends Error {
  override name = "SubjectError";
  constructor(message: string, readonly subject?: string, readonly token?: string) {
    super(message);
  }
}

/** Bytes that are not a valid Protobuf encoding of the message their subject promises. */
export class DecodeError extends Error {
  override name = "DecodeError";
  constructor(message: string, readonly subject: string, options?: ErrorOptions) {
    super(message, options);
  }
}

/** No `nats-server` binary could be found to start a managed server. */
export class NatsServerNotFoundError extends Error {
  override name = "NatsServerNotFoundError";
  constructor() {
    super(
      "Cannot start NATS: no 'nats-server' binary found on PATH (or in NATS_SERVER_BIN). " +
        "Install it with 'sudo apt-get install -y nats-server' (Debian/Ubuntu) or 'brew install nats-server', " +
        "or point Compozy at a running server with NATS_URL=nats://host:4222.",
    );
  }
}

/** The managed server did not start or did not become ready. */
export class NatsServerStartError extends Error {
  override name = "NatsServerStartError";
  constructor(message: string, readonly output: string, options?: ErrorOptions) {
    super(message, options);
  }
}

/**
 * Another live process runs a managed nats-server on this JetStream store (pkg/nats/server_guard.ts): a
 * second server on one store would corrupt it.
 */
export class NatsStoreInUseError extends Error {
  override name = "NatsStoreInUseError";
  constructor(readonly storeDir: string, readonly owner?: number) {
    super(
      `Cannot start NATS: the store ${storeDir} is in use by another running Compozy process` +
        (owner ? ` (pid ${owner})` : "") +
        ". Stop it first (Ctrl-C in its terminal), or connect to its NATS with --nats-url.",
    );
  }
}

/** NATS could not be reached (at start, or for longer than the publish deadline). */
export class NatsUnavailableError extends Error {
  override name = "NatsUnavailableError";
  constructor(message: string, readonly url: string, options?: ErrorOptions) {
    super(message, options);
  }
}

/** A JetStream publish that could not be acknowledged before its deadline: the message is NOT stored. */
export class PublishError extends Error {
  override name = "PublishError";
  constructor(message: string, readonly subject: string, readonly attempts: number, options?: ErrorOptions) {
    super(message, options);
  }
}

/**
 * A JetStream read that NATS left unanswered (its request timed out, or nothing answered it while the server
 * restarted): nothing was read. Like a PublishError's unstored write it is NATS's fault, not the reader's: an
 * execution's driver gives the execution up and replays it rather than failing a task with it.
 */
export class ReadUnansweredError extends Error {
  override name = "ReadUnansweredError";
  constructor(readonly what: string, options: ErrorOptions & { cause: unknown }) {
    super(`NATS left ${what} unanswered: ${(options.cause as Error)?.message ?? options.cause}`, options);
  }
}

/** The nats.js errors of a request that got no answer (timed out, no responders, connection lost). */
const UNANSWERED = new Set(["TimeoutError", "NoResponders", "RequestError", "ConnectionError"]);

/** Runs `read`; NATS's silence (see UNANSWERED) is thrown as a ReadUnansweredError naming `what`. */
export async function answeredRead<T>(what: string, read: () => Promise<T>): Promise<T> {
  try {
    return await read();
  } catch (e) {
    if (e instanceof Error && UNANSWERED.has(e.name)) throw new ReadUnansweredError(what, { cause: e });
    throw e;
  }
}

/**
 * A message larger than the server's `max_payload`: no retry can store it. Not a PublishError, which means
 * "NATS could not be reached" and makes a writer give up and replay; this one is the content's fault.
 */
export class MessageTooLargeError extends Error {
  override name = "MessageTooLargeError";
  /** `what` names what was being written (e.g. "task 'c' output"), for a message a user can act on. */
  constructor(
    readonly subject: string,
    readonly bytes: number,
    readonly maxBytes: number,
    options?: ErrorOptions & { what?: string },
  ) {
    super(
      `${options?.what ?? "a message"} is ${bytes} bytes encoded, over the bus limit of ${maxBytes} bytes ` +
        `(the server's max_payload less room for headers; subject '${subject}')`,
      options,
    );
  }
}

/** A request that got no reply before its deadline, or whose responder returned an error reply. */
export class RequestError extends Error {
  override name = "RequestError";
  constructor(message: string, readonly subject: string, options?: ErrorOptions) {
    super(message, options);
  }
}

/**
 * Thrown by a `Bus.serve` handler whose request must get no reply at all: its process is stopping and gave the
 * work up, and any answer would be taken as the work's outcome. The requester sees what a dead responder gives
 * (no reply) and sends the request again elsewhere.
 */
export class LeftUnanswered extends Error {
  override name = "LeftUnanswered";
}

/**
 * A stream read whose reader kept failing: it was re-created from the last message read `tries` times (a
 * server restart takes its consumers along) and the last try failed too; `cause` is that failure.
 */
export class StreamReadError extends Error {
  override name = "StreamReadError";
  constructor(
    message: string,
    readonly stream: string,
    readonly filter: string,
    readonly tries: number,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

/** The message of anything thrown, for log lines and wrapped errors. */
export function errorMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
