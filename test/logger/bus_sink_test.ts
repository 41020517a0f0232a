/** Log events on NATS against a real nats-server: subjects, the LOGS stream, levels and outages. */
import assert from "node:assert/strict";
import { fromBinary } from "@bufbuild/protobuf";
import { jetstreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { Bus, connectNats, provisionJetStream, STREAMS } from "../../pkg/nats/mod.ts";
import { type LogEmitted, LogEmittedSchema, LogLevel } from "../../pkg/pb/log_pb.ts";
import {
  configureLogging,
  forwardToolLog,
  getLogger,
  type LoggingSetup,
  resetLogging,
  withContext,
} from "../../pkg/logger/mod.ts";
import { startTestNats, type TestNats } from "../support/nats.ts";

interface Harness {
  nats: TestNats;
  nc: NatsConnection;
  bus: Bus;
  setup: LoggingSetup;
  lines: string[];
}

async function withLoggingOnNats(fn: (h: Harness) => Promise<void>): Promise<void> {
  const nats = await startTestNats();
  const nc = await connectNats(nats.url, { name: "logger-test" });
  try {
    await provisionJetStream(nc);
    const bus = new Bus(nc, { source: "engine" });
    const lines: string[] = [];
    const setup = await configureLogging({
      component: "engine",
      instanceId: "engine-1",
      level: "info",
      format: "json",
      bus,
      write: (line) => lines.push(line),
    });
    await fn({ nats, nc, bus, setup, lines });
  } finally {
    await resetLogging();
    await nc.close();
    await nats.stop();
  }
}

/** Reads the LOGS stream under `filter` until `n` records are there (or fails after `timeoutMs`). */
async function readLogs(
  bus: Bus,
  filter: string,
  n: number,
  timeoutMs = 5_000,
): Promise<Array<{ subject: string; event: LogEmitted }>> {
  const got: Array<{ subject: string; event: LogEmitted }> = [];
  let done!: () => void;
  const complete = new Promise<void>((r) => done = r);
  const consumer = await bus.consume<LogEmitted>({
    stream: STREAMS.logs,
    durable: `read-${crypto.randomUUID()}`,
    filterSubject: filter,
    handler: (event, delivery) => {
      got.push({ subject: delivery.subject, event });
      if (got.length === n) done();
    },
  });
  const timer = setTimeout(done, timeoutMs);
  await complete;
  clearTimeout(timer);
  await consumer.stop();
  assert.equal(got.length, n, `expected ${n} records on ${filter}, got ${got.length}`);
  return got;
}

async function until(condition: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

const exec = "0193f0a4-7b3c-7d2e-9a41-6c0f3b2a1e55";

Deno.test("log events on a real nats-server", async (t) => {
  await withLoggingOnNats(async ({ nats, nc, bus, setup, lines }) => {
    await t.step("a record with run ids is stored in LOGS on its execution's subject", async () => {
      getLogger(["engine", "task"]).warn("Task {task_id} is slow", {
        correlation_id: exec,
        workflow_id: "weather",
        workflow_exec_id: exec,
        task_id: "get-weather",
        task_exec_id: "t-1",
        elapsed_ms: 1_500,
      });
      await nc.flush();
      const [{ subject, event }] = await readLogs(bus, `compozy.${exec}.*.logs.*.*`, 1);
      assert.equal(subject, `compozy.${exec}.task.logs.t-1.warn`);
      assert.equal(event.level, LogLevel.WARN);
      assert.equal(event.message, "Task get-weather is slow");
      assert.equal(event.category, "compozy.engine.task");
      assert.equal(event.metadata?.correlationId, exec);
      assert.equal(event.metadata?.source, "engine");
      assert.ok(event.metadata?.eventId);
      assert.equal(event.workflow?.id, "weather");
      assert.equal(event.workflow?.execId, exec);
      assert.equal(event.task?.id, "get-weather");
      assert.equal(event.task?.execId, "t-1");
      assert.equal(JSON.parse(new TextDecoder().decode(event.fieldsJson)).elapsed_ms, 1_500);
    });

    await t.step("a record outside any run goes on the process's system subject", async () => {
      getLogger(["engine"]).error("Engine lost its lease");
      await nc.flush();
      const [{ subject, event }] = await readLogs(bus, "compozy.system.engine.logs.engine-1.*", 1);
      assert.equal(subject, "compozy.system.engine.logs.engine-1.error");
      assert.equal(event.level, LogLevel.ERROR);
      assert.equal(event.metadata?.correlationId, "system");
    });

    await t.step("ids set once with withContext place every record inside", async () => {
      const run = crypto.randomUUID();
      await withContext({ correlation_id: run, workflow_exec_id: run }, async () => {
        await Promise.resolve();
        getLogger(["engine"]).info("Workflow started");
        getLogger(["engine"]).info("Task dispatched", { task_exec_id: "t-9" });
      });
      await nc.flush();
      const got = await readLogs(bus, `compozy.${run}.*.logs.*.*`, 2);
      assert.deepEqual(got.map((g) => g.subject).sort(), [
        `compozy.${run}.task.logs.t-9.info`,
        `compozy.${run}.workflow.logs.${run}.info`,
      ]);
    });

    await t.step("forwarded tool output lands on the tool execution's subject", async () => {
      forwardToolLog("info", "fetched 3 forecasts", {
        correlationId: exec,
        workflowExecId: exec,
        taskExecId: "t-1",
        toolId: "weather_tool",
        toolExecId: "x-1",
      });
      await nc.flush();
      const [{ subject, event }] = await readLogs(bus, `compozy.${exec}.tool.logs.*.*`, 1);
      assert.equal(subject, `compozy.${exec}.tool.logs.x-1.info`);
      assert.equal(event.tool?.id, "weather_tool");
      assert.equal(event.message, "fetched 3 forecasts");
    });

    await t.step("records below the level are neither written nor published", async () => {
      const received: string[] = [];
      const sub = nc.subscribe("compozy.*.*.logs.*.*", {
        callback: (_e, m) => {
          received.push(m.subject);
        },
      });
      const before = setup.busSink!.stats().published;
      const linesBefore = lines.length;
      getLogger(["engine"]).debug("too detailed");
      getLogger(["engine"]).trace("even more");
      getLogger(["engine"]).info("kept");
      await nc.flush();
      sub.unsubscribe();
      assert.deepEqual(received, ["compozy.system.engine.logs.engine-1.info"]);
      assert.equal(setup.busSink!.stats().published, before + 1);
      assert.equal(lines.length, linesBefore + 1);
    });

    await t.step("values JSON cannot hold are published in a readable form, never thrown", async () => {
      const run = crypto.randomUUID();
      const cyclic: Record<string, unknown> = {};
      cyclic.self = cyclic;
      getLogger(["engine"]).info("odd values", { correlation_id: run, cyclic, big: 1n, at: new Date(0) });
      await nc.flush();
      const [{ event }] = await readLogs(bus, `compozy.${run}.*.logs.*.*`, 1);
      assert.deepEqual(JSON.parse(new TextDecoder().decode(event.fieldsJson)), {
        correlation_id: run,
        cyclic: { self: "[Circular]" },
        big: "1",
        at: "1970-01-01T00:00:00.000Z",
      });
    });

    await t.step("with NATS stopped, logging goes on locally and drops bus events with a count", async () => {
      const { published, dropped } = setup.busSink!.stats();
      await nats.server.stop();
      await until(() => lines.some((l) => l.includes("NATS is unreachable")), 5_000, "the outage warning");
      const linesBefore = lines.length;
      for (let i = 0; i < 5_000; i++) getLogger(["engine"]).info("during the outage {i}", { i });
      assert.equal(lines.length, linesBefore + 5_000);
      const during = setup.busSink!.stats();
      assert.equal(during.published, published);
      assert.equal(during.dropped, dropped + 5_000);

      await nats.restart();
      await until(() => lines.some((l) => l.includes("NATS is back")), 10_000, "the reconnect notice");
      const notice = JSON.parse(lines.find((l) => l.includes("NATS is back"))!);
      assert.equal(notice.dropped, 5_000);
      assert.equal(notice.category, "compozy.logger");

      const run = crypto.randomUUID();
      getLogger(["engine"]).info("after the outage", { correlation_id: run });
      await nc.flush();
      const [{ event }] = await readLogs(bus, `compozy.${run}.*.logs.*.*`, 1);
      assert.equal(event.message, "after the outage");
    });

    await t.step("the sink's own notices are never published (no feedback loop)", async () => {
      const count = (await (await jetstreamManager(nc)).streams.info(STREAMS.logs)).state.messages;
      const stored = await readLogs(bus, "compozy.*.*.logs.*.*", count);
      assert.ok(lines.some((l) => JSON.parse(l).category === "compozy.logger"));
      assert.deepEqual(stored.filter((s) => s.event.category === "compozy.logger"), []);
    });
  });
});

Deno.test("after the connection is closed, logging still never throws", async () => {
  await withLoggingOnNats(async ({ nc, setup, lines }) => {
    await nc.close();
    getLogger(["engine"]).info("after close");
    assert.equal(lines.length, 1);
    await until(() => setup.busSink!.stats().dropped === 1, 1_000, "the drop count");
    assert.equal(setup.busSink!.stats().published, 0);
  });
});

/** The LOGS stream decodes as LogEmitted: the schema the catalogue promises for every log subject. */
Deno.test("LogEmitted bytes on the wire decode with the generated schema", async () => {
  await withLoggingOnNats(async ({ nc }) => {
    const raw = new Promise<Uint8Array>((resolve) => {
      const sub = nc.subscribe("compozy.system.engine.logs.engine-1.fatal", {
        max: 1,
        callback: (_e, m) => resolve(m.data),
      });
      sub.closed.catch(() => {});
    });
    await nc.flush();
    getLogger(["engine"]).fatal("Cannot continue");
    const event = fromBinary(LogEmittedSchema, await raw);
    assert.equal(event.level, LogLevel.FATAL);
    assert.equal(event.message, "Cannot continue");
  });
});
