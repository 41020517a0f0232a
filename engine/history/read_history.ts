/** Reads an execution's stored events back from the EVENTS stream, in order. */
import type { DescMessage, MessageShape } from "@bufbuild/protobuf";
import type { JetStreamClient } from "@nats-io/jetstream";
import {
  type CachedReadOptions,
  decodeBySubject,
  lastSequenceOf,
  readStreamCached,
  STREAMS,
} from "../../pkg/nats/mod.ts";
import { getLogger } from "../../pkg/logger/mod.ts";

const log = getLogger(["engine", "history"]);

export interface StoredEvent {
  seq: number;
  subject: string;
  /** `<component>.<type>`, e.g. `task.success`. */
  type: string;
  time: Date;
  message: MessageShape<DescMessage>;
}

/**
 * Every event of a run (all executions sharing `correlationId`), in stream order. Undecodable entries are
 * skipped here: the consumers that met them live have already dead-lettered them.
 */
export async function readRunEvents(js: JetStreamClient, correlationId: string): Promise<StoredEvent[]> {
  // The run began with its root execution's start (the root's id is the correlation id): nothing of the
  // run is older, so the read skips the history before it.
  return await readRunEventsFrom(js, correlationId, {
    startAtLastOf: startedSubject(correlationId, correlationId),
    fromSeq: () => startOf(js, correlationId, correlationId),
  });
}

/**
 * The events of one execution, read from its own start. A sub-workflow shares its run's correlation id, so
 * reading its whole run made each activation of a short child cost every event its parent and siblings had
 * stored (about 100 in finding G6: a 50 ms sleep woke 4 s late, one stream get per event on a loaded
 * machine). foldReplayState begins at the last `workflow.started`, so starting the read there changes
 * nothing in the replay. An execution whose start cannot be found is read from its run's start. A start this
 * client read before is not looked up again (read_cache.ts, startAtLastOf).
 */
export async function readExecutionEvents(
  js: JetStreamClient,
  correlationId: string,
  execId: string,
): Promise<StoredEvent[]> {
  const fromSeq = async () =>
    await startOf(js, correlationId, execId) ??
      (execId === correlationId ? undefined : await startOf(js, correlationId, correlationId));
  const events = await readRunEventsFrom(js, correlationId, {
    startAtLastOf: startedSubject(correlationId, execId),
    fromSeq,
  });
  return eventsOfExecution(events, execId);
}

/** The events of one execution stored after `afterSeq` (the rest of a history read before). */
export async function readExecutionEventsAfter(
  js: JetStreamClient,
  correlationId: string,
  execId: string,
  afterSeq: number,
): Promise<StoredEvent[]> {
  return eventsOfExecution(await readRunEventsFrom(js, correlationId, { fromSeq: afterSeq + 1 }), execId);
}

/** The subject of an execution's `workflow.started` event. */
function startedSubject(correlationId: string, execId: string): string {
  return `compozy.${correlationId}.workflow.evts.${execId}.started`;
}

/** The sequence of an execution's (last) `workflow.started` event, if it is stored. */
function startOf(js: JetStreamClient, correlationId: string, execId: string): Promise<number | undefined> {
  return lastSequenceOf(js, STREAMS.events, startedSubject(correlationId, execId));
}

/**
 * Through read_cache.ts: the same history is read on every activation of an execution another engine
 * accepted, on take-overs and state repairs; a read of one this client read before asks only for what was
 * added since.
 */
async function readRunEventsFrom(
  js: JetStreamClient,
  correlationId: string,
  from: CachedReadOptions,
): Promise<StoredEvent[]> {
  const events: StoredEvent[] = [];
  for (const msg of await readStreamCached(js, STREAMS.events, `compozy.${correlationId}.*.evts.*.*`, from)) {
    const event = storedEvent(msg, "history read");
    if (event) events.push(event);
  }
  return events;
}

/**
 * A stored message as an event; undefined for one that cannot be decoded: the live consumers dead-letter
 * it, and a read shows what could be read. `readKind` names the read in the log line.
 */
export function storedEvent(
  msg: { seq: number; subject: string; data: Uint8Array; time: Date },
  readKind: string,
): StoredEvent | undefined {
  const tokens = msg.subject.split(".");
  try {
    return {
      seq: msg.seq,
      subject: msg.subject,
      type: `${tokens[2]}.${tokens[5]}`,
      time: msg.time,
      message: decodeBySubject(msg.subject, msg.data),
    };
  } catch (e) {
    log.debug("event {seq} on {subject} skipped in a {readKind}: {error}", {
      seq: msg.seq,
      subject: msg.subject,
      readKind,
      error: String(e),
    });
    return undefined;
  }
}

/** The events of one execution within its run. */
export function eventsOfExecution(events: StoredEvent[], execId: string): StoredEvent[] {
  return events.filter((e) => (e.message as { workflow?: { execId: string } }).workflow?.execId === execId);
}
