/**
 * Where `/api/logs` reads from: the LOGS stream, filtered by the run's correlation id, read as the engine
 * reads its history (pkg/nats/read_stream.ts): a query leaves nothing behind on the server.
 *
 * @module
 */
import { jetstream } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { decodeAs } from "../pkg/nats/codec.ts";
import { STREAMS } from "../pkg/nats/provision.ts";
import { lastSequenceOf, readStream } from "../pkg/nats/mod.ts";
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

export function jetStreamLogSource(nc: NatsConnection): LogSource {
  const js = jetstream(nc);
  return {
    async logs(correlationId, limit, from = 1) {
      const filter = subjectFilter({ correlationId, kind: "logs" });
      // readStream ends on the stream's last sequence, not on the consumer's pending count, which
      // nats-server 2.9 gets wrong for a wildcard filter (a page ended with records left, next_cursor null).
      const messages = await readStream(js, STREAMS.logs, filter, { fromSeq: from, limit, walkLimit: 0 });
      const records = messages.map((m) =>
        toLogRecord(m.seq, m.subject, decodeAs(LogEmittedSchema, m.subject, m.data))
      );
      const read = messages.at(-1)?.seq;
      // A short page read every record stored when it began. A full one has a next page if a record of the
      // run is stored after its last.
      if (read === undefined || messages.length < limit) return { records, next: null };
      const last = await lastSequenceOf(js, STREAMS.logs, filter);
      return { records, next: last !== undefined && last > read ? read + 1 : null };
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
