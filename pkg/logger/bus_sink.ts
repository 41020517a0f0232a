/**
 * A LogTape sink that also publishes every record as a `LogEmitted` event on the log subjects, over core
 * NATS; the LOGS stream captures those subjects. Logs are best effort by design: this sink never throws into
 * the code that logged, never logs about its own failures through itself, and never queues without bound.
 */
import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import type { LogRecord, Sink } from "@logtape/logtape";
import { getLogger } from "@logtape/logtape";
import { type Bus, CONNECTION_LOG_CATEGORY } from "../nats/bus.ts";
import { encode } from "../nats/codec.ts";
import { LogEmittedSchema } from "../pb/log_pb.ts";
import { stringifySafely } from "./json_value.ts";
import { addressOf, idsOf, type ProcessIdentity } from "./log_address.ts";
import { toLevelToken, toProtoLevel } from "./levels.ts";
import { renderMessage } from "./formatters.ts";

/**
 * Records about the bus sink itself are written under this category; the sink skips them, so a failing
 * publish can never cause another publish.
 */
export const LOGGER_CATEGORY = ["compozy", "logger"] as const;

/** Longer messages are cut: a log event must stay far below NATS' max payload (1 MB by default). */
const MAX_MESSAGE_CHARS = 16_384;
/** Larger property sets are replaced by a note of their size, for the same reason. */
const MAX_FIELDS_BYTES = 64 * 1024;

export interface BusLogStats {
  /** Records handed to the NATS client while connected. */
  published: number;
  /** Records not published: NATS was down, the connection closed, or the publish failed. */
  dropped: number;
}

export interface BusLogSink extends Sink, Disposable {
  stats(): BusLogStats;
}

export interface BusLogSinkOptions extends ProcessIdentity {
  bus: Bus;
}

/**
 * Creates the sink. While the connection is down, records are dropped and counted instead of published:
 * the NATS client would otherwise hold every publish in its reconnect buffer with no limit, so a long
 * outage with chatty logs would grow memory without bound. Records logged between the socket dropping and
 * the client reporting it (milliseconds) may still be buffered; that window is what bounds the work.
 */
export function createBusLogSink(options: BusLogSinkOptions): BusLogSink {
  const { bus } = options;
  const encoder = new TextEncoder();
  const stats: BusLogStats = { published: 0, dropped: 0 };
  let connected = !bus.nc.isClosed();
  const watcher = watchConnection(bus, stats, (up) => connected = up);

  const sink = (record: LogRecord): void => {
    if (isAboutTheSink(record) || isAboutTheConnection(record)) return;
    if (!connected) {
      stats.dropped++;
      return;
    }
    try {
      const level = toLevelToken(record.level);
      const address = addressOf(idsOf(record.properties), level, options);
      const event = create(LogEmittedSchema, {
        metadata: {
          correlationId: address.correlationId,
          eventId: crypto.randomUUID(),
          source: options.component,
          time: timestampFromMs(record.timestamp),
        },
        level: toProtoLevel(level),
        message: renderMessage(record).slice(0, MAX_MESSAGE_CHARS),
        category: record.category.join("."),
        fieldsJson: fieldsOf(record.properties, encoder),
        workflow: address.workflow,
        task: address.task,
        agent: address.agent,
        tool: address.tool,
      });
      // LogEmitted is not a catalogued command or event, so Bus.publishCore (which derives the subject from
      // the catalogue) does not take it; the log subject comes from the record instead.
      bus.nc.publish(address.subject, encode(LogEmittedSchema, event));
      stats.published++;
    } catch {
      // A closed connection or an unencodable record: count it; logging about it here could recurse.
      stats.dropped++;
    }
  };
  return Object.assign(sink, {
    stats: (): BusLogStats => ({ ...stats }),
    [Symbol.dispose]: () => watcher.stop(),
  });
}

function isAboutTheSink(record: LogRecord): boolean {
  return record.category[0] === LOGGER_CATEGORY[0] && record.category[1] === LOGGER_CATEGORY[1];
}

function fieldsOf(properties: Record<string, unknown>, encoder: TextEncoder): Uint8Array {
  const bytes = encoder.encode(stringifySafely(properties));
  if (bytes.byteLength <= MAX_FIELDS_BYTES) return bytes;
  return encoder.encode(JSON.stringify({ truncated: true, bytes: bytes.byteLength }));
}

/**
 * Follows the connection's status so the sink knows when to drop, and reports outages on the console only
 * (under {@link LOGGER_CATEGORY}), with how many records were dropped meanwhile.
 */
function watchConnection(
  bus: Bus,
  stats: BusLogStats,
  setConnected: (up: boolean) => void,
): { stop(): void } {
  const logger = getLogger([...LOGGER_CATEGORY]);
  const status = bus.nc.status();
  let droppedAtDisconnect = 0;
  let reportNow = () => {};
  (async () => {
    for await (const s of status) {
      if (s.type === "disconnect") {
        setConnected(false);
        droppedAtDisconnect = stats.dropped;
        // Not said in an orderly stop, where NATS going away is expected.
        reportNow = bus.reportOutage(() =>
          logger.warn("NATS is unreachable; log events are dropped until it is back", { server: s.server })
        );
      } else if (s.type === "reconnect") {
        setConnected(true);
        reportNow();
        logger.warn("NATS is back; {dropped} log events were dropped during the outage", {
          dropped: stats.dropped - droppedAtDisconnect,
          server: s.server,
        });
      } else if (s.type === "close") {
        setConnected(false);
      }
    }
  })().catch(() => setConnected(false));
  return {
    // status() is a QueuedIterator at run time; stopping it ends the loop above without waiting for an event.
    stop: () => (status as unknown as { stop?: () => void }).stop?.(),
  };
}

function isAboutTheConnection(record: LogRecord): boolean {
  return CONNECTION_LOG_CATEGORY.every((part, i) => record.category[i] === part);
}
