/**
 * Live events over Server-Sent Events: the stored history first, then new events as they are recorded, one
 * SSE message per event (`id` = its sequence, `event` = its type, `data` = the event as JSON). The stream
 * ends after the execution's own terminal event; `Last-Event-ID` resumes after the given sequence.
 *
 * With `deltas`, the live text of the execution's agent calls is interleaved as it streams: `event:
 * agent.delta` messages without an `id` (they are not in the history, so a resumed stream cannot replay them
 * and `Last-Event-ID` keeps pointing at stored events). Deltas are followed from the moment the stream
 * opens; they arrive in the order published, but core NATS may drop some under load (`seq` shows a gap).
 *
 * A client slower than the history holds the follow back: at most QUEUED_EVENTS_BOUND stored events wait
 * for the writer (before, a reader that stopped reading had the whole history queued in the server's
 * memory). Deltas cannot wait (they are not stored): past QUEUED_DELTAS_BOUND queued, new ones are dropped,
 * a gap in `seq` like a core NATS drop.
 *
 * When the follow fails before the end (the EVENTS stream deleted, NATS closed), the stream ends with one
 * `event: error` message whose `data` is the API's error body (`{"error": {"code": "events_unavailable",
 * "message", "details"}}`), and the server logs it with the execution's id: it used to send keep-alives and
 * nothing else, for ever (outside review api35). A client may reconnect with `Last-Event-ID`.
 *
 * @module
 */
import type { Context } from "hono";
import { type SSEStreamingApi, streamSSE } from "hono/streaming";
import type { ExecutionClient, LiveDelta } from "../engine/client.ts";
import type { EventRecord } from "../engine/state/execution_state.ts";
import { getLogger } from "../pkg/logger/mod.ts";
import { ApiError, type ErrorBody } from "./api_error.ts";

const log = getLogger(["api", "sse"]);

/** Comment lines keep idle connections open through proxies that close silent ones. */
export const HEARTBEAT_MS = 15_000;

const TERMINAL_WORKFLOW_EVENTS = new Set([
  "workflow.success",
  "workflow.failed",
  "workflow.canceled",
  "workflow.timed_out",
]);

/** True for the event that ends `execId` itself (not one of its sub-workflows). */
export function endsExecution(event: EventRecord, execId: string): boolean {
  return TERMINAL_WORKFLOW_EVENTS.has(event.type) && event.subject.split(".")[4] === execId;
}

export interface StreamOptions {
  /** Interleave the live `agent.delta`s of the execution's agent calls. */
  deltas?: boolean;
  heartbeatMs?: number;
  /** Where the stream registers, so that a stopping server can end it. */
  liveStreams?: LiveStreams;
}

/** Why a stream ended early because its server is stopping (not a failure: logged at debug level). */
export class ServerStoppingError extends Error {
  override name = "ServerStoppingError";
  constructor() {
    super("The server is stopping");
  }
}

/**
 * The live streams open now. A stopping server ends them first: Deno's graceful shutdown waits for every
 * response to finish, and a stream finishes only with its execution, so one open stream (a console tab
 * following a running execution, a `run --wait`) held `compozy dev`'s Ctrl-C for as long as the execution
 * ran (outside review api35).
 */
export class LiveStreams {
  private readonly open = new Set<(error: ServerStoppingError) => void>();

  /** Registers a stream's end; returns its removal. */
  add(end: (error: ServerStoppingError) => void): () => void {
    this.open.add(end);
    return () => this.open.delete(end);
  }

  /** Ends every open stream with a ServerStoppingError (each says so to its client, then closes). */
  endAll(): void {
    const error = new ServerStoppingError();
    for (const end of this.open) end(error);
    this.open.clear();
  }

  get size(): number {
    return this.open.size;
  }
}

/**
 * The sequence a stream resumes after: 0 without the header. A malformed one is a 400: read as "from the
 * start" it replayed the whole history to a client that had seen it (outside review B8).
 */
export function lastEventId(header: string | undefined): number {
  if (header === undefined || header === "") return 0;
  if (!/^[0-9]{1,15}$/.test(header)) {
    throw new ApiError(
      400,
      "invalid_header",
      `Last-Event-ID must be the id (a sequence number) of an event this stream sent, got '${
        header.slice(0, 64)
      }'`,
      [{ header: "Last-Event-ID" }],
    );
  }
  return Number(header);
}

export function streamEvents(
  c: Context,
  client: ExecutionClient,
  execId: string,
  options: StreamOptions = {},
): Response {
  const heartbeatMs = options.heartbeatMs ?? HEARTBEAT_MS;
  const lastSeen = lastEventId(c.req.header("last-event-id"));
  if (c.req.method === "HEAD") {
    // Hono answers HEAD with the GET handler and drops the body unread: a stream opened for it followed the
    // execution (an ordered consumer and its loop) until the execution ended, for no one (outside review
    // api35). The headers a GET would get, and nothing opened.
    return c.body(null, 200, { "content-type": "text/event-stream", "cache-control": "no-cache" });
  }
  return streamSSE(c, async (stream) => {
    const queue = new EventQueue();
    stream.onAbort(() => queue.close());
    const unregister = options.liveStreams?.add((error) => queue.fail(error)) ?? (() => {});
    let stopDeltas = () => {};
    let stopEvents = () => {};
    const heartbeat = setInterval(() => {
      stream.write(": keep-alive\n\n").catch(() => queue.close());
    }, heartbeatMs);
    try {
      // Deltas first: a delta published while the history replays is still seen.
      if (options.deltas) stopDeltas = await client.watchDeltas(execId, (delta) => queue.pushDelta(delta));
      stopEvents = await client.watchEvents(
        execId,
        (event) => queue.push(event),
        (error) => queue.fail(error),
      );
      for await (const event of queue) {
        if (!("seq" in event)) {
          await stream.writeSSE({ event: event.type, data: JSON.stringify(event) });
          continue;
        }
        if (event.seq > lastSeen) {
          await stream.writeSSE({ id: String(event.seq), event: event.type, data: JSON.stringify(event) });
        }
        // Ends the stream even when the client said it had seen it (or a later id, one of another store):
        // nothing of this execution follows its terminal event.
        if (endsExecution(event, execId)) {
          // The state is folded from the events a moment later: the stream ends once a GET shows the end too.
          // The wait is event-driven (it hears the state's write); if it fails the stream still ends.
          await client.waitForEnd(execId, 5_000).catch((error) =>
            log.warn("Execution {exec_id} ended but its state could not be read: {error}", {
              exec_id: execId,
              error,
            })
          );
          break;
        }
      }
    } catch (error) {
      await endWithError(stream, execId, error);
    } finally {
      unregister();
      clearInterval(heartbeat);
      stopDeltas();
      stopEvents();
      if (queue.droppedDeltas > 0) {
        log.info(
          "The live stream of execution {exec_id} dropped {count} agent deltas its client read too slowly",
          {
            exec_id: execId,
            count: queue.droppedDeltas,
          },
        );
      }
    }
  });
}

/** The code of the `event: error` message that ends a stream whose follow failed. */
export const EVENTS_UNAVAILABLE = "events_unavailable";
/** The code of the `event: error` message that ends a stream because its server is stopping. */
export const SERVER_STOPPING = "server_stopping";

/** Logs why the stream ends early and tells the client in one `event: error` message (no `id`: not stored). */
async function endWithError(stream: SSEStreamingApi, execId: string, error: unknown): Promise<void> {
  const message = error instanceof Error ? error.message : String(error);
  const stopping = error instanceof ServerStoppingError;
  const line = "Live event stream of execution {exec_id} ended before the execution: {error}";
  // A stop is routine: dev's Ctrl-C prints no line per open stream; a follow that failed is an error.
  if (stopping) log.debug(line, { exec_id: execId, error: message });
  else log.error(line, { exec_id: execId, error });
  const body: ErrorBody = {
    error: {
      code: stopping ? SERVER_STOPPING : EVENTS_UNAVAILABLE,
      message: `${message}; the stream ends here (reconnect with Last-Event-ID to resume)`,
      details: [{ exec_id: execId }],
    },
  };
  // The client may be gone already: then there is no one left to tell.
  await stream.writeSSE({ event: "error", data: JSON.stringify(body) }).catch((writeError) =>
    log.debug("Could not send the error event of execution {exec_id}: {error}", {
      exec_id: execId,
      error: writeError,
    })
  );
}

/**
 * Stored events queued for a stream's writer before the follow is held back: a client that reads slower
 * than the history comes (a long history replayed, a reader that stopped reading) holds about this many,
 * not the whole history (a collection's history is hundreds of MB).
 */
export const QUEUED_EVENTS_BOUND = 64;

/**
 * Live deltas queued for the writer past which new ones are dropped: they are never stored, so they cannot
 * be held back; a dropped one shows as a gap in `seq`, as one core NATS dropped does.
 */
export const QUEUED_DELTAS_BOUND = 1_024;

/** The queue between the follow and the writer, which may be slower: bounded, see the bounds above. */
export class EventQueue implements AsyncIterable<EventRecord | LiveDelta> {
  private readonly items: (EventRecord | LiveDelta)[] = [];
  private storedEvents = 0;
  private wake?: () => void;
  private drained?: { promise: Promise<void>; resolve: () => void };
  private closed = false;
  private failure?: Error;
  /** Deltas dropped because too many were queued. */
  droppedDeltas = 0;

  /** Queues a stored event; a promise (settled once the writer has taken half of them) when it is full. */
  push(event: EventRecord): Promise<void> | undefined {
    this.items.push(event);
    this.storedEvents++;
    this.wake?.();
    if (this.storedEvents < QUEUED_EVENTS_BOUND || this.closed) return undefined;
    this.drained ??= Promise.withResolvers<void>();
    return this.drained.promise;
  }

  /** Queues a live delta, or drops it when the writer is that far behind. */
  pushDelta(delta: LiveDelta): void {
    if (this.items.length - this.storedEvents >= QUEUED_DELTAS_BOUND) {
      this.droppedDeltas++;
      return;
    }
    this.items.push(delta);
    this.wake?.();
  }

  close(): void {
    this.closed = true;
    this.release();
    this.wake?.();
  }

  /** Ends the iteration with `error`, after the items already queued. */
  fail(error: Error): void {
    this.failure ??= error;
    this.close();
  }

  async *[Symbol.asyncIterator](): AsyncIterator<EventRecord | LiveDelta> {
    while (true) {
      const next = this.items.shift();
      if (next) {
        if ("seq" in next && --this.storedEvents <= QUEUED_EVENTS_BOUND / 2) this.release();
        yield next;
        continue;
      }
      if (this.failure) throw this.failure;
      if (this.closed) return;
      await new Promise<void>((resolve) => this.wake = resolve);
      this.wake = undefined;
    }
  }

  /** Lets a held-back follow go on. */
  private release(): void {
    this.drained?.resolve();
    this.drained = undefined;
  }
}
