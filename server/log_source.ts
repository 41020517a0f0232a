/**
 * Where `/api/logs` reads from: the LOGS stream, filtered by the run's correlation id. Reading uses an
 * ephemeral ordered consumer, so a query leaves nothing behind on the server.
 *
 * @module
 */
import { DeliverPolicy, jetstream } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { getLogger } from "../pkg/logger/mod.ts";
import { decodeAs } from "../pkg/nats/codec.ts";
import { STREAMS } from "../pkg/nats/provision.ts";
import { subjectFilter } from "../pkg/nats/subjects.ts";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { type LogEmitted, LogEmittedSchema, LogLevel } from "../pkg/pb/log_pb.ts";

export interface LogRecord {
  /** Its sequence in the LOGS stream: records of one execution are in this order. */
  seq: number;
  time: string;
  level: string;
  message: string;
  category: string;
  /** The component that logged (`workflow`, `task`, `tool`, `agent`, `engine`, `runtime`, `api`). */
  component: string;
  fields: unknown;
  workflow_id: string | null;
  exec_id: string | null;
  task_id: string | null;
}

/** One page of an execution's log records. */
export interface LogPage {
  records: LogRecord[];
  /** Where the next page starts (a LOGS stream sequence); null when no more records are stored yet. */
  next: number | null;
}

export interface LogSource {
  /** At most `limit` records logged under `correlationId`, in order, from stream sequence `from` (default 1). */
  logs(correlationId: string, limit: number, from?: number): Promise<LogPage>;
}

const log = getLogger(["api", "logs"]);

/** How long to wait for a page of log records before answering with what arrived. */
const FETCH_EXPIRES_MS = 1_000;

export function jetStreamLogSource(nc: NatsConnection): LogSource {
  const js = jetstream(nc);
  const jsm = js.jetstreamManager();
  return {
    async logs(correlationId, limit, from = 1) {
      const filter = subjectFilter({ correlationId, kind: "logs" });
      // Where the records end is the last one stored under the filter, not the consumer's pending count:
      // nats-server 2.9 counts pending for a wildcard filter from a start past some subject's last record
      // in the order of a Go map, and the count came out both low (a page ended with records left, its
      // next_cursor null) and high. The last record's sequence is a maximum, whatever the order.
      const last = await (await jsm).streams.getMessage(STREAMS.logs, { last_by_subj: filter });
      if (!last || last.seq < from) return { records: [], next: null };
      const consumer = await js.consumers.get(STREAMS.logs, {
        // One subject as a string: a list needs nats-server 2.10, and the managed server may be 2.9.
        filter_subjects: filter,
        deliver_policy: DeliverPolicy.StartSequence,
        opt_start_seq: from,
      });
      try {
        const records: LogRecord[] = [];
        const messages = await consumer.fetch({ max_messages: limit, expires: FETCH_EXPIRES_MS });
        for await (const msg of messages) {
          records.push(toLogRecord(msg.seq, msg.subject, decodeAs(LogEmittedSchema, msg.subject, msg.data)));
          if (msg.seq >= last.seq || records.length >= limit) break;
        }
        // Records stored after the last one looked up belong to the next page. A fetch that ran out of time
        // before the last record ends its page early; one that ran out before its first leaves `from` next.
        const read = records.at(-1)?.seq ?? from - 1;
        return { records, next: read >= last.seq ? null : read + 1 };
      } finally {
        // An ordered consumer is ephemeral and goes away on its own after its inactivity threshold: a
        // failed delete leaves nothing that lasts, so it is logged, not thrown over the page already read.
        await consumer.delete().catch((error) =>
          log.debug("Deleting a log reader failed: {error}", { error })
        );
      }
    },
  };
}

/** The JSON form of a log record. */
export function toLogRecord(seq: number, subject: string, log: LogEmitted): LogRecord {
  const execId = log.workflow?.execId || null;
  return {
    seq,
    time: log.metadata?.time ? timestampDate(log.metadata.time).toISOString() : "",
    level: LogLevel[log.level]?.toLowerCase() ?? "unspecified",
    message: log.message,
    category: log.category,
    component: subject.split(".")[2],
    fields: parseFields(log.fieldsJson),
    workflow_id: log.workflow?.id || null,
    exec_id: execId,
    task_id: log.task?.id || null,
  };
}

function parseFields(bytes: Uint8Array): unknown {
  if (bytes.byteLength === 0) return {};
  try {
    return JSON.parse(new TextDecoder().decode(bytes));
  } catch {
    return { raw: new TextDecoder().decode(bytes) };
  }
}
