/**
 * What JetStream holds for an execution that did not end (a crash run's case still running at the harness's
 * last limit): the command consumers' counts, the execution's lease, and its commands still in the work
 * queues. An execution with nothing driving it shows here why: no command left, a command pending with no
 * delivery, or a lease another holder keeps.
 */
import { jetstreamManager } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/transport-node";
import { BUCKETS, STREAMS } from "../../../pkg/nats/mod.ts";

const CONSUMERS = [
  [STREAMS.workflowCommands, "compozy-workflow-executor"],
  [STREAMS.taskCommands, "compozy-task-timers"],
] as const;

/** One line per fact; a fact that could not be read says why instead. */
export async function stuckReport(
  nc: NatsConnection,
  execIds: string[],
  correlationId: string,
): Promise<string[]> {
  const lines: string[] = [];
  const jsm = await jetstreamManager(nc);
  for (const [stream, durable] of CONSUMERS) {
    try {
      const info = await jsm.consumers.info(stream, durable);
      lines.push(
        `${durable}: ack_pending ${info.num_ack_pending}, pending ${info.num_pending}, redelivered ${info.num_redelivered}, waiting pulls ${info.num_waiting}, delivered stream seq ${info.delivered.stream_seq}, ack floor stream seq ${info.ack_floor.stream_seq}`,
      );
    } catch (e) {
      lines.push(`${durable}: not read (${e})`);
    }
  }
  try {
    const leases = await new Kvm(nc).open(BUCKETS.leases);
    for (const id of execIds) {
      const entry = await leases.get(id);
      lines.push(
        `lease ${id}: ${
          entry
            ? `${entry.operation} ${entry.string()} rev ${entry.revision} at ${entry.created.toISOString()}`
            : "none"
        }`,
      );
    }
  } catch (e) {
    lines.push(`leases: not read (${e})`);
  }
  for (const stream of [STREAMS.workflowCommands, STREAMS.taskCommands]) {
    try {
      const info = await jsm.streams.info(stream, { subjects_filter: `compozy.${correlationId}.>` });
      const subjects = Object.entries(info.state.subjects ?? {});
      if (!subjects.length) lines.push(`${stream}: no command of ${correlationId}`);
      for (const [subject, count] of subjects) {
        const last = await jsm.streams.getMessage(stream, { last_by_subj: subject });
        lines.push(
          `${stream}: ${subject} ×${count}, last seq ${last?.seq} stored ${last?.time.toISOString()}`,
        );
      }
    } catch (e) {
      lines.push(`${stream}: not read (${e})`);
    }
  }
  return lines;
}
