/** The typed bus against a real nats-server: every message type, dead letters, outages and restarts. */
import assert from "node:assert/strict";
import { create, type DescMessage, type MessageShape } from "@bufbuild/protobuf";
import { jetstreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { TaskExecutionSuccessSchema, ToolExecuteResultSchema } from "../../pkg/pb/mod.ts";
import {
  Bus,
  type BusMessage,
  CATALOGUE,
  connectNats,
  DLQ_REASON_HEADER,
  DLQ_SUBJECT_HEADER,
  MessageTooLargeError,
  NatsUnavailableError,
  provisionJetStream,
  PublishError,
  RequestError,
  STREAMS,
  subjectOf,
} from "../../pkg/nats/mod.ts";
import { DEFAULT_BUCKETS, DEFAULT_STREAMS } from "../../pkg/nats/provision.ts";
import { startTestNats, type TestNats } from "../support/nats.ts";

const corr = "0193f0a4-7b3c-7d2e-9a41-6c0f3b2a1e55";

function sample(schema: DescMessage, bus: Bus, n = 0, correlationId = corr): BusMessage {
  return create(schema, {
    metadata: bus.metadata(correlationId),
    workflow: { id: "weather", execId: correlationId },
    task: { id: "get-weather", execId: `task-${n}` },
    agent: { id: "forecaster", execId: `agent-${n}`, actionId: "advise" },
    tool: { id: "weather_tool", execId: `tool-${n}` },
  } as never) as BusMessage;
}

/** A task.success whose output is `size` zero bytes. */
function withOutput(bus: Bus, n: number, size: number): BusMessage {
  const message = sample(TaskExecutionSuccessSchema, bus, n) as MessageShape<
    typeof TaskExecutionSuccessSchema
  >;
  message.outputJson = new Uint8Array(size);
  return message;
}

function allSchemas(): Array<[string, DescMessage]> {
  const out: Array<[string, DescMessage]> = [];
  for (const [component, kinds] of Object.entries(CATALOGUE)) {
    for (const [kind, types] of Object.entries(kinds)) {
      for (const [type, schema] of Object.entries(types as Record<string, DescMessage>)) {
        out.push([`${component}.${kind}.${type}`, schema]);
      }
    }
  }
  return out;
}

async function withNats(fn: (nats: TestNats, nc: NatsConnection, bus: Bus) => Promise<void>): Promise<void> {
  const nats = await startTestNats();
  const nc = await connectNats(nats.url, { name: "bus-test" });
  try {
    await provisionJetStream(nc);
    await fn(nats, nc, new Bus(nc, { source: "test", publishDeadlineMs: 10_000 }));
  } finally {
    await nc.close();
    await nats.stop();
  }
}

async function collect<T>(
  n: number,
  timeoutMs: number,
  register: (push: (v: T) => void) => void,
): Promise<T[]> {
  const out: T[] = [];
  return await new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`got ${out.length} of ${n} before ${timeoutMs} ms`)),
      timeoutMs,
    );
    register((v) => {
      out.push(v);
      if (out.length === n) {
        clearTimeout(timer);
        resolve(out);
      }
    });
  });
}

Deno.test("bus against a real nats-server", async (t) => {
  await withNats(async (nats, nc, bus) => {
    await t.step("every command and event round-trips over core NATS with its subject", async () => {
      const schemas = allSchemas();
      const received = new Map<string, MessageShape<DescMessage>>();
      const sub = bus.subscribe("compozy.>", (m, subject) => received.set(subject, m));
      const sent = new Map<string, BusMessage>();
      for (const [, schema] of schemas) {
        const message = sample(schema, bus);
        sent.set(subjectOf(message), message);
        bus.publishCore(message);
      }
      await nc.flush();
      const deadline = Date.now() + 3_000;
      while (received.size < sent.size && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
      sub.unsubscribe();
      assert.equal(received.size, schemas.length);
      for (const [subject, message] of sent) assert.deepEqual(received.get(subject), message, subject);
    });

    await t.step("every state event is stored in EVENTS and read back equal", async () => {
      const events = allSchemas().filter(([name]) => name.includes(".evts."));
      const run = crypto.randomUUID();
      const sent = events.map(([, schema], i) => sample(schema, bus, i, run));
      for (const m of sent) await bus.publish(m);
      const got = await collect<MessageShape<DescMessage>>(sent.length, 5_000, (push) => {
        bus.consume({
          stream: STREAMS.events,
          durable: "roundtrip",
          filterSubject: `compozy.${run}.*.evts.*.*`,
          handler: (m) => push(m),
        });
      });
      const byId = (ms: MessageShape<DescMessage>[]) =>
        new Map(ms.map((m) => [(m as BusMessage).metadata?.eventId, m]));
      assert.deepEqual(byId(got), byId(sent));
    });

    await t.step("a retried publish with the same event id is stored once", async () => {
      const m = sample(TaskExecutionSuccessSchema, bus, 99);
      const first = await bus.publish(m);
      const second = await bus.publish(m);
      assert.equal(first.duplicate, false);
      assert.equal(second.duplicate, true);
      assert.equal(second.seq, first.seq);
    });

    await t.step("a message that fits max_payload only without its headers is refused at once", async () => {
      // Under max_payload by itself, over it with the message id header: once a PublishError (the writer
      // gave up and replayed, to be refused again), now final, before anything is sent.
      const max = nc.info!.max_payload;
      const near = withOutput(bus, 101, max - 200);
      await assert.rejects(bus.publish(near), (e) => {
        assert.ok(e instanceof MessageTooLargeError, String(e));
        assert.ok(e.bytes > e.maxBytes && e.maxBytes < max);
        return true;
      });
      assert.equal((await bus.publish(withOutput(bus, 100, max - 20 * 1024))).duplicate, false);
    });

    await t.step("request/reply: answers, error replies and missing responders are named", async () => {
      const toolExecute = sample(CATALOGUE.tool.cmds.execute, bus) as MessageShape<
        typeof CATALOGUE.tool.cmds.execute
      >;
      const sub = bus.serve(
        "compozy.*.tool.cmds.*.execute",
        "runtime",
        ToolExecuteResultSchema,
        (m) => {
          const input = m as MessageShape<typeof CATALOGUE.tool.cmds.execute>;
          if (input.attempt === 7) throw new Error("sandbox exploded");
          return create(ToolExecuteResultSchema, {
            result: {
              case: "success",
              value: { tool: input.tool, outputJson: new TextEncoder().encode('{"ok":true}') },
            },
          });
        },
      );
      const reply = await bus.request(toolExecute, ToolExecuteResultSchema, { timeoutMs: 2_000 });
      assert.equal(reply.result.case, "success");
      assert.equal(new TextDecoder().decode(reply.result.value?.outputJson), '{"ok":true}');
      const failing = create(CATALOGUE.tool.cmds.execute, { ...toolExecute, attempt: 7 });
      await assert.rejects(
        bus.request(failing, ToolExecuteResultSchema),
        (e) => e instanceof RequestError && /refused: sandbox exploded/.test(e.message),
      );
      sub.unsubscribe();
      await assert.rejects(
        bus.request(toolExecute, ToolExecuteResultSchema, { timeoutMs: 200, deadlineMs: 600 }),
        (e) => e instanceof RequestError && /got no reply after \d+ attempt/.test(e.message),
      );
    });

    await t.step("corrupt bytes go to the DLQ with the reason and never stop the consumer", async () => {
      const subject = `compozy.${corr}.task.evts.bad-1.success`;
      const good = sample(TaskExecutionSuccessSchema, bus, 500);
      const seen: string[] = [];
      const done = collect<string>(1, 5_000, (push) => {
        bus.consume({
          stream: STREAMS.events,
          durable: "dlq-test",
          filterSubject: `compozy.${corr}.task.evts.*.success`,
          handler: (m) => {
            const id = (m as MessageShape<typeof TaskExecutionSuccessSchema>).task?.execId ?? "";
            seen.push(id);
            if (id === "task-500") push(id);
          },
        });
      });
      await bus.publishRaw(subject, new Uint8Array([0xff, 0xff, 0xff, 0x07, 0x01]));
      await bus.publish(good);
      await done;
      const jsm = await jetstreamManager(nc);
      const dead = await jsm.streams.getMessage(STREAMS.deadLetters, {
        last_by_subj: "compozy.dlq.task.evts",
      });
      assert.ok(dead);
      assert.equal(dead.header.get(DLQ_SUBJECT_HEADER), subject);
      assert.match(
        dead.header.get(DLQ_REASON_HEADER),
        /Cannot decode 5 bytes on '.*bad-1\.success' as compozy\.v1\.TaskExecutionSuccess/,
      );
      assert.deepEqual(dead.data, new Uint8Array([0xff, 0xff, 0xff, 0x07, 0x01]));
      assert.ok(!seen.includes("bad-1"));
    });

    await t.step("a terminated message leaves the consumer: its ack floor passes it", async () => {
      const m = sample(TaskExecutionSuccessSchema, bus, 77, crypto.randomUUID());
      const { seq } = await bus.publish(m);
      let handled!: () => void;
      const done = new Promise<void>((r) => handled = r);
      const consumer = await bus.consume({
        stream: STREAMS.events,
        durable: "term-test",
        filterSubject: subjectOf(m),
        handler: () => {
          handled();
          return { term: "given up" };
        },
      });
      await done;
      const jsm = await jetstreamManager(nc);
      // nats-server 2.9 does not read `+TERM <reason>`: such a message stayed pending for ever.
      let info = await jsm.consumers.info(STREAMS.events, "term-test");
      for (let i = 0; i < 50 && info.ack_floor.stream_seq < seq; i++) {
        await new Promise((r) => setTimeout(r, 50));
        info = await jsm.consumers.info(STREAMS.events, "term-test");
      }
      await consumer.stop();
      assert.equal(info.num_ack_pending, 0);
      assert.equal(info.ack_floor.stream_seq, seq);
    });

    await t.step("provisioning twice changes nothing; a changed limit is applied in place", async () => {
      const again = await provisionJetStream(nc);
      assert.deepEqual(again.created, []);
      assert.deepEqual(again.updated, []);
      assert.equal(again.unchanged.length, DEFAULT_STREAMS.length + DEFAULT_BUCKETS.length);
      const changed = await provisionJetStream(nc, { maxAgeMs: { [STREAMS.logs]: 3_600_000 } });
      assert.deepEqual(changed.updated, [STREAMS.logs]);
      const jsm = await jetstreamManager(nc);
      assert.equal((await jsm.streams.info(STREAMS.logs)).config.max_age, 3_600_000 * 1_000_000);
    });

    await t.step("a JetStream consumer loses no message across a server restart", async () => {
      const ids = new Set<string>();
      const total = 200;
      const run = crypto.randomUUID();
      const all = collect<string>(total, 20_000, (push) => {
        bus.consume({
          stream: STREAMS.events,
          durable: "restart-test",
          filterSubject: `compozy.${run}.task.evts.*.started`,
          handler: (m) => {
            const id = (m as MessageShape<typeof CATALOGUE.task.evts.started>).task?.execId ?? "";
            if (!ids.has(id)) {
              ids.add(id);
              push(id);
            }
          },
        });
      });
      for (let i = 0; i < total / 2; i++) {
        await bus.publish(sample(CATALOGUE.task.evts.started, bus, i, run));
      }
      await nats.restart({ crash: true });
      for (let i = total / 2; i < total; i++) {
        await bus.publish(sample(CATALOGUE.task.evts.started, bus, i, run));
      }
      const got = await all;
      assert.equal(new Set(got).size, total);
    });

    await t.step("a publish during an outage is retried and lands once the server is back", async () => {
      await nats.server.stop();
      const m = sample(CATALOGUE.task.evts.failed, bus, 7_000);
      const pending = bus.publish(m);
      await new Promise((r) => setTimeout(r, 700));
      await nats.restart({});
      const ack = await pending;
      assert.equal(ack.stream, STREAMS.events);
      const stored = await (await jetstreamManager(nc)).streams.getMessage(STREAMS.events, { seq: ack.seq });
      assert.equal(stored?.subject, subjectOf(m));
    });

    await t.step("a publish that outlives its deadline fails loudly", async () => {
      const impatient = new Bus(nc, { source: "test", publishDeadlineMs: 600 });
      await nats.server.stop();
      await assert.rejects(
        impatient.publish(sample(CATALOGUE.task.evts.failed, bus, 7_001)),
        (e) => e instanceof PublishError && /failed after \d+ attempt/.test(e.message),
      );
      await nats.restart({});
    });

    await t.step("a publish retried through an outage ends at once when its signal aborts", async () => {
      // A driver given up while its write is retried (outside report R-E1): the retries stop with it, not at
      // the publish deadline (10 s here).
      await nats.server.stop();
      const givenUp = new AbortController();
      const reason = new Error("the driver was given up");
      const pending = bus.publish(sample(CATALOGUE.task.evts.failed, bus, 7_002), { signal: givenUp.signal });
      await new Promise((r) => setTimeout(r, 300));
      const abortedAt = performance.now();
      givenUp.abort(reason);
      await assert.rejects(
        pending,
        (e) => e instanceof PublishError && e.cause === reason && /ended by its caller/.test(e.message),
      );
      const tookMs = performance.now() - abortedAt;
      assert.ok(tookMs < 200, `ended ${tookMs} ms after the abort`);
      await nats.restart({});
    });
  });
});

Deno.test("NATS down at start is a named error", async () => {
  await assert.rejects(
    connectNats("nats://127.0.0.1:1", { connectTimeoutMs: 300 }),
    (e) =>
      e instanceof NatsUnavailableError &&
      /Cannot connect to NATS at nats:\/\/127\.0\.0\.1:1/.test(e.message),
  );
});
