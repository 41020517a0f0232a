/**
 * The live view of `compozy dev`: one line per workflow, task, tool and agent event, printed as events are
 * recorded.
 * It listens on core NATS (no consumer, nothing to ack), so it costs the engine nothing and never holds
 * messages back; an undecodable message is skipped here (the engine's consumers dead-letter it).
 *
 * @module
 */
import { timestampDate } from "@bufbuild/protobuf/wkt";
import type { NatsConnection } from "@nats-io/transport-node";
import { decodeBySubject } from "../pkg/nats/codec.ts";
import { subjectFilter } from "../pkg/nats/subjects.ts";
import type { Metadata } from "../pkg/pb/common_pb.ts";
import { EventLines } from "./event_line.ts";
import type { Paint } from "./terminal.ts";

export interface LiveLog {
  stop(): void;
}

/** Lines are written in batches: one write per burst instead of one per event keeps a busy engine fast. */
const FLUSH_MS = 50;

export function startLiveLog(nc: NatsConnection, paint: Paint, write: (text: string) => void): LiveLog {
  const lines = new EventLines(paint);
  let pending: string[] = [];
  const flush = () => {
    if (pending.length > 0) write(pending.join("\n"));
    pending = [];
  };
  const flusher = setInterval(flush, FLUSH_MS);
  const subscriptions = (["workflow", "task", "tool", "agent"] as const).map((component) =>
    nc.subscribe(subjectFilter({ component, kind: "evts" }), {
      callback: (err, msg) => {
        if (err) return;
        let message;
        try {
          message = decodeBySubject(msg.subject, msg.data);
        } catch {
          return;
        }
        const tokens = msg.subject.split(".");
        const metadata = (message as { metadata?: Metadata }).metadata;
        const line = lines.format({
          type: `${tokens[2]}.${tokens[5]}`,
          time: (metadata?.time ? timestampDate(metadata.time) : new Date()).toISOString(),
          // The message's own fields carry the names of its JSON form; no conversion needed for a line.
          data: message,
        });
        if (line) pending.push(line);
      },
    })
  );
  return {
    stop: () => {
      subscriptions.forEach((s) => s.unsubscribe());
      clearInterval(flusher);
      flush();
    },
  };
}
