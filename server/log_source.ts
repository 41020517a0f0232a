/**
 * Where `/api/logs` reads from: the LOGS stream, filtered by the run's correlation id. Reading uses an
 * ephemeral ordered consumer, so a query leaves nothing behind on the server.
 *
 * @module
 */
import { jetstream } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { decodeAs } from "../pkg/nats/codec.ts";
import { STREAMS } from "../pkg/nats/provision.ts";
import { subjectFilter } from "../pkg/nats/subjects.ts";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { type LogEmitted, LogEmittedSchema, LogLevel } from "../pkg/pb/log_pb.ts";

export interface LogRecord {
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

export interface LogSource {
  /** The first `limit` records logged under `correlationId`, in order. */
  logs(correlationId: string, limit: number): Promise<LogRecord[]>;
}

/** How long to wait for a page of log records before answering with what arrived. */
const FETCH_EXPIRES_MS = 1_000;

export function jetStreamLogSource(nc: NatsConnection): LogSource {
  const js = jetstream(nc);
  return {
    async logs(correlationId, limit) {
      const consumer = await js.consumers.get(STREAMS.logs, {
        // One subject as a string: a list needs nats-server 2.10, and the managed server may be 2.9.
        filter_subjects: subjectFilter({ correlationId, kind: "logs" }),
      });
      const info = await consumer.info(true);
      if (info.num_pending === 0) return [];
      const records: LogRecord[] = [];
      const messages = await consumer.fetch({
        max_messages: Math.min(limit, info.num_pending),
        expires: FETCH_EXPIRES_MS,
      });
      for await (const msg of messages) {
        records.push(toLogRecord(msg.subject, decodeAs(LogEmittedSchema, msg.subject, msg.data)));
        if (msg.info.pending === 0 || records.length >= limit) break;
      }
      await consumer.delete().catch(() => {});
      return records;
    },
  };
}

/** The JSON form of a log record. */
export function toLogRecord(subject: string, log: LogEmitted): LogRecord {
  const execId = log.workflow?.execId || null;
  return {
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
