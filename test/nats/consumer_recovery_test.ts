/**
 * A durable consumer keeps delivering whatever happens to it on the server (review R-E1: executions stuck
 * RUNNING after nats-server was killed again and again, with nothing in the log). The nats.js client only
 * re-pulls; it neither creates a lost consumer again nor restarts a pull loop that ended.
 */
import assert from "node:assert/strict";
import { create, type MessageShape } from "@bufbuild/protobuf";
import { jetstreamManager } from "@nats-io/jetstream";
import { Bus, CATALOGUE, connectNats, provisionJetStream, STREAMS, subjectOf } from "../../pkg/nats/mod.ts";
import { startTestNats } from "../support/nats.ts";
import { withCapturedLog } from "../support/log_capture.ts";

Deno.test("a durable consumer deleted on the server is created again and delivers what follows", async () => {
  const nats = await startTestNats();
  const nc = await connectNats(nats.url, { name: "consumer-recovery-test" });
  try {
    await provisionJetStream(nc);
    const bus = new Bus(nc, { source: "test", publishDeadlineMs: 10_000 });
    const run = crypto.randomUUID();
    const started = (n: number) =>
      create(CATALOGUE.task.evts.started, {
        metadata: bus.metadata(run),
        workflow: { id: "wf", execId: run },
        task: { id: "t", execId: `task-${n}` },
      });
    const seen: string[] = [];
    const waiting = new Map<string, () => void>();
    /** Resolves when the message of task `id` reaches the handler (a redelivery of another does not count). */
    const arrival = (id: string) => new Promise<void>((resolve) => waiting.set(id, resolve));
    const consumer = await bus.consume({
      stream: STREAMS.events,
      durable: "recovery-test",
      filterSubject: `compozy.${run}.task.evts.*.started`,
      handler: (m) => {
        const id = (m as MessageShape<typeof CATALOGUE.task.evts.started>).task?.execId ?? "";
        seen.push(id);
        waiting.get(id)?.();
      },
    });
    const first = arrival("task-1");
    await bus.publish(started(1));
    await first;

    const jsm = await jetstreamManager(nc);
    await jsm.consumers.delete(STREAMS.events, "recovery-test");
    const second = arrival("task-2");
    const message = started(2);
    await bus.publish(message);
    const timedOut = Symbol("timed out");
    let timer: ReturnType<typeof setTimeout> | undefined;
    const outcome = await Promise.race([
      second,
      new Promise((r) => timer = setTimeout(() => r(timedOut), 20_000)),
    ]);
    clearTimeout(timer);
    await consumer.stop();
    assert.notEqual(outcome, timedOut, `${subjectOf(message)} never reached the handler after the delete`);
    // Created again, the consumer delivers from the first message its stream still holds: delivery is at
    // least once, as after any redelivery.
    assert.deepEqual([...new Set(seen)], ["task-1", "task-2"]);
    const info = await jsm.consumers.info(STREAMS.events, "recovery-test");
    assert.equal(info.config.filter_subject, `compozy.${run}.task.evts.*.started`);
  } finally {
    await nc.close();
    await nats.stop();
  }
});

Deno.test("a durable consumer whose connection was closed stops pulling instead of retrying for ever", async () => {
  const nats = await startTestNats();
  try {
    await withCapturedLog(async (log) => {
      const nc = await connectNats(nats.url, { name: "consumer-closed-connection-test" });
      await provisionJetStream(nc);
      const bus = new Bus(nc, { source: "test" });
      const consumer = await bus.consume({
        stream: STREAMS.events,
        durable: "closed-connection-test",
        filterSubject: "compozy.x.task.evts.*.started",
        handler: () => {},
      });
      await nc.close();
      await new Promise((r) => setTimeout(r, 2_500));
      // Before: "could not pull again: closed connection" once a second, its timer keeping the process alive.
      const retries = log.records("could not pull again").length;
      await consumer.stop();
      assert.equal(retries, 0, log.text());
    });
  } finally {
    await nats.stop();
  }
});
