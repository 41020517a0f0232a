/**
 * Reading an execution's history for its replay (finding G6): a sub-workflow shares its run's correlation
 * id, and each activation of a parked child read every event of its run from the root's start, one stream
 * get per event. With about 100 events of its parent and siblings stored, the child's 50 ms sleeps woke 2
 * to 4 s late on a loaded machine and its parent's 8 s time-out fired first.
 */
import assert from "node:assert/strict";
import { create } from "@bufbuild/protobuf";
import { jetstream } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { readExecutionEvents, type StoredEvent } from "../../engine/history/read_history.ts";
import { foldReplayState } from "../../engine/history/replay_state.ts";
import { uuidv7 } from "../../engine/ids.ts";
import { Bus, type BusMessage, connectNats, provisionJetStream } from "../../pkg/nats/mod.ts";
import * as pb from "../../pkg/pb/mod.ts";
import { startTestNats } from "../support/nats.ts";

/** A nats-server with the streams, a bus writing on one connection, and another connection to read with. */
async function withWriterAndReader(
  fn: (peers: { bus: Bus; nc: NatsConnection; reader: NatsConnection }) => Promise<void>,
): Promise<void> {
  const nats = await startTestNats();
  const nc = await connectNats(nats.url, { name: "history-writer" });
  const reader = await connectNats(nats.url, { name: "history-reader" });
  try {
    await provisionJetStream(nc);
    await fn({ bus: new Bus(nc, { source: "test" }), nc, reader });
  } finally {
    await reader.close();
    await nc.close();
    await nats.stop();
  }
}

Deno.test({
  name: "history: a sub-workflow's replay reads from its own start, not from its run's (G6)",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: () =>
    withWriterAndReader(async ({ bus, reader }) => {
      const root = uuidv7();
      const child = uuidv7();
      const publish = (message: unknown) => bus.publish(message as BusMessage);
      const task = (execId: string, i: number) =>
        publish(create(pb.TaskExecutionSuccessSchema, {
          metadata: bus.metadata(root, `${execId}:t${i}:success`),
          workflow: { id: execId === root ? "parent" : "child", execId },
          task: { id: `t${i}`, execId: uuidv7() },
          attempt: 1,
        }));
      await publish(create(pb.WorkflowExecutionStartedSchema, {
        metadata: bus.metadata(root, `${root}:started`),
        workflow: { id: "parent", execId: root },
      }));
      // The parent's (and its other children's) history before the child starts.
      for (let i = 0; i < 150; i++) await task(root, i);
      await publish(create(pb.WorkflowExecutionStartedSchema, {
        metadata: bus.metadata(root, `${child}:started`),
        workflow: { id: "child", execId: child },
        parent: { workflow: { id: "parent", execId: root }, task: { id: "sub", execId: uuidv7() } },
      }));
      for (let i = 0; i < 3; i++) await task(child, i);
      await task(root, 150);

      const before = reader.stats().outMsgs;
      const events = await readExecutionEvents(jetstream(reader), root, child);
      const requests = reader.stats().outMsgs - before;
      assert.deepEqual(events.map((e) => e.type), [
        "workflow.started",
        "task.success",
        "task.success",
        "task.success",
      ]);
      assert.equal(foldReplayState(events)?.tasks.size, 3);
      // Its own 4 events, the parent's one after them, the start's look-up and the end of the walk: far
      // from the 152 events of the run (over 64 requests when read from the run's start).
      assert.ok(requests <= 10, `the child's history took ${requests} requests`);

      // The root's history is still its whole run's, from its start.
      const rootEvents = await readExecutionEvents(jetstream(reader), root, root);
      assert.equal(rootEvents.length, 152);
    }),
});

Deno.test({
  name: "history: reading an execution again asks only for the events added since (issue 12)",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: () =>
    withWriterAndReader(async ({ bus, nc, reader }) => {
      const exec = uuidv7();
      const task = (i: number) =>
        bus.publish(create(pb.TaskExecutionSuccessSchema, {
          metadata: bus.metadata(exec, `${exec}:t${i}:success`),
          workflow: { id: "wf", execId: exec },
          task: { id: `t${i}`, execId: uuidv7() },
          attempt: 1,
        }) as unknown as BusMessage);
      await bus.publish(create(pb.WorkflowExecutionStartedSchema, {
        metadata: bus.metadata(exec, `${exec}:started`),
        workflow: { id: "wf", execId: exec },
      }) as unknown as BusMessage);
      for (let i = 0; i < 11; i++) await task(i);
      const js = jetstream(reader);
      const requestsOf = async (read: () => Promise<StoredEvent[]>) => {
        const before = reader.stats().outMsgs;
        const events = await read();
        return { events, requests: reader.stats().outMsgs - before };
      };

      const first = await requestsOf(() => readExecutionEvents(js, exec, exec));
      assert.equal(first.events.length, 12);
      // One get after the last event read and one that checks the first is still stored; the start is
      // remembered, not looked up (the look-up and a get per event, 14 requests, before).
      const again = await requestsOf(() => readExecutionEvents(js, exec, exec));
      assert.equal(again.events.length, 12);
      assert.ok(
        again.requests <= 2,
        `the second read took ${again.requests} requests (the first ${first.requests})`,
      );

      await task(11);
      const grown = await requestsOf(() => readExecutionEvents(js, exec, exec));
      assert.deepEqual(
        grown.events.map((e) => e.seq),
        (await readExecutionEvents(jetstream(nc), exec, exec)).map((e) => e.seq),
      );
      assert.equal(grown.events.length, 13);
      assert.ok(grown.requests <= 3, `the read after one new event took ${grown.requests} requests`);

      // Started again (a later workflow.started of the same execution): the read begins there, as a read
      // that looks the start up does.
      await bus.publish(create(pb.WorkflowExecutionStartedSchema, {
        metadata: bus.metadata(exec, `${exec}:started-again`),
        workflow: { id: "wf", execId: exec },
      }) as unknown as BusMessage);
      await task(12);
      const restarted = await readExecutionEvents(js, exec, exec);
      assert.deepEqual(restarted.map((e) => e.type), ["workflow.started", "task.success"]);
      assert.deepEqual(
        restarted.map((e) => e.seq),
        (await readExecutionEvents(jetstream(nc), exec, exec)).map((e) => e.seq),
      );
    }),
});
