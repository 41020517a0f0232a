/**
 * NATS backbone benchmark: how fast encoded Compozy events travel from a publisher to a consumer over core
 * NATS and over JetStream, and what one core request/reply round trip costs. It starts its own managed
 * nats-server (file storage, as in production) in a temporary directory; publisher and consumer are two
 * connections of this process, so every message crosses the server's sockets, but both sides share one
 * JavaScript thread: throughput is what one process doing both ends reaches. Bounded to a few seconds.
 * Latency is publish call → handler call; with more than one message in flight it includes queueing.
 */
import { create } from "@bufbuild/protobuf";
import {
  Bus,
  connectNats,
  type Consumer,
  ManagedNatsServer,
  provisionJetStream,
  STREAMS,
} from "../pkg/nats/mod.ts";
import { encode } from "../pkg/nats/codec.ts";
import { type TaskExecutionSuccess, TaskExecutionSuccessSchema } from "../pkg/pb/task_pb.ts";
import { ToolExecuteResultSchema, ToolExecuteSchema } from "../pkg/pb/tool_pb.ts";
import type { BenchRow } from "./_table.ts";
import { percentile, roundMs } from "./_stats.ts";

/** A scenario that takes longer than this has lost messages; it fails instead of hanging the run. */
const SCENARIO_TIMEOUT_MS = 15_000;
const OUTPUT = new TextEncoder().encode(JSON.stringify({ city: "Lisbon", temperature_c: 21.5, ok: true }));

/** Runs every scenario against a fresh managed nats-server and returns one row per scenario. */
export async function benchNats(): Promise<BenchRow[]> {
  const storeDir = await Deno.makeTempDir({ prefix: "compozy-bench-nats-" });
  const server = await ManagedNatsServer.start({ storeDir });
  const publisher = new Bus(await connectNats(server.url, { name: "bench-publisher" }), { source: "bench" });
  const consumer = new Bus(await connectNats(server.url, { name: "bench-consumer" }), { source: "bench" });
  try {
    await provisionJetStream(publisher.nc);
    return [
      await corePubSub(publisher, consumer, 5_000, 1),
      await corePubSub(publisher, consumer, 50_000, 1_000),
      await jetStreamAwaited(publisher, consumer, 5_000),
      await jetStreamPipelined(publisher, consumer, 20_000, 256),
      await requestReply(publisher, consumer, 5_000),
    ];
  } finally {
    await publisher.nc.close();
    await consumer.nc.close();
    await server.stop();
    await Deno.remove(storeDir, { recursive: true }).catch(() => {});
  }
}

/** Core NATS: publishCore with at most `window` messages sent but not yet received. */
async function corePubSub(publisher: Bus, consumer: Bus, n: number, window: number): Promise<BenchRow> {
  const run = crypto.randomUUID();
  const clock = new Clock(n);
  const sub = consumer.subscribe(`compozy.${run}.task.evts.*.success`, (m) => {
    clock.received(seqOf(m as TaskExecutionSuccess));
  });
  await consumer.nc.flush();
  const started = performance.now();
  for (let i = 0; i < n; i++) {
    if (clock.arrivals.isFull(i, window)) await clock.arrivals.atLeast(i - Math.floor(window / 2));
    clock.sent(i);
    publisher.publishCore(taskSuccess(publisher, run, i));
  }
  await clock.arrivals.atLeast(n);
  const elapsed = performance.now() - started;
  sub.unsubscribe();
  return row("core pub → sub", sizeOf(publisher, run), n, window, elapsed, clock.latencies);
}

/** JetStream: each publish awaits the EVENTS stream's acknowledgement; a durable pull consumer reads them. */
async function jetStreamAwaited(publisher: Bus, consumer: Bus, n: number): Promise<BenchRow> {
  const run = crypto.randomUUID();
  const clock = new Clock(n);
  const pull = await pullConsumer(consumer, run, clock);
  const started = performance.now();
  for (let i = 0; i < n; i++) {
    clock.sent(i);
    await publisher.publish(taskSuccess(publisher, run, i));
  }
  await clock.arrivals.atLeast(n);
  const elapsed = performance.now() - started;
  await pull.stop();
  return row("JetStream awaited publish → pull", sizeOf(publisher, run), n, 1, elapsed, clock.latencies);
}

/**
 * JetStream pipelined: publishes are not awaited one by one; at most `window` events are published but not
 * yet consumed, so the figure is the stream's throughput with a bounded backlog, not a growing one.
 */
async function jetStreamPipelined(
  publisher: Bus,
  consumer: Bus,
  n: number,
  window: number,
): Promise<BenchRow> {
  const run = crypto.randomUUID();
  const clock = new Clock(n);
  const pull = await pullConsumer(consumer, run, clock);
  const started = performance.now();
  for (let i = 0; i < n; i++) {
    if (clock.arrivals.isFull(i, window)) await clock.arrivals.atLeast(i - Math.floor(window / 2));
    clock.sent(i);
    publisher.publish(taskSuccess(publisher, run, i)).catch((e) => clock.arrivals.fail(e));
  }
  await clock.arrivals.atLeast(n);
  const elapsed = performance.now() - started;
  await pull.stop();
  return row(
    "JetStream pipelined publish → pull",
    sizeOf(publisher, run),
    n,
    window,
    elapsed,
    clock.latencies,
  );
}

function pullConsumer(consumer: Bus, run: string, clock: Clock): Promise<Consumer> {
  return consumer.consume<TaskExecutionSuccess>({
    stream: STREAMS.events,
    durable: `bench-${run}`,
    filterSubject: `compozy.${run}.task.evts.*.success`,
    handler: (m) => clock.received(seqOf(m)),
  });
}

/** Core request/reply: ToolExecute to a responder in a queue group, ToolExecuteResult back, one at a time. */
async function requestReply(requester: Bus, responder: Bus, n: number): Promise<BenchRow> {
  const run = crypto.randomUUID();
  const reply = create(ToolExecuteResultSchema, {
    result: { case: "success", value: { metadata: responder.metadata(run), outputJson: OUTPUT } },
  });
  const sub = responder.serve(
    `compozy.${run}.tool.cmds.*.execute`,
    "bench",
    ToolExecuteResultSchema,
    () => reply,
  );
  await responder.nc.flush();
  const command = (seq: number) =>
    create(ToolExecuteSchema, {
      metadata: requester.metadata(run),
      workflow: { id: "bench", execId: run },
      task: { id: "step", execId: `t-${seq}` },
      tool: { id: "echo", execId: `x-${seq}` },
      inputJson: OUTPUT,
    });
  const latencies = new Float64Array(n);
  const started = performance.now();
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    await requester.request(command(i), ToolExecuteResultSchema);
    latencies[i] = performance.now() - t0;
  }
  const elapsed = performance.now() - started;
  sub.unsubscribe();
  const bytes = encode(ToolExecuteSchema, command(0)).byteLength;
  return row("core request/reply round trip", bytes, n, 1, elapsed, latencies);
}

function taskSuccess(bus: Bus, run: string, seq: number): TaskExecutionSuccess {
  return create(TaskExecutionSuccessSchema, {
    metadata: bus.metadata(run),
    workflow: { id: "bench", execId: run },
    task: { id: "step", execId: `t-${seq}` },
    outputJson: OUTPUT,
    attempt: 1,
  });
}

/** The encoded size of the events a scenario sends. */
function sizeOf(bus: Bus, run: string): number {
  return encode(TaskExecutionSuccessSchema, taskSuccess(bus, run, 0)).byteLength;
}

function seqOf(m: TaskExecutionSuccess): number {
  return Number(m.task?.execId.slice(2));
}

function row(
  benchmark: string,
  bytes: number,
  n: number,
  window: number,
  elapsedMs: number,
  latencies: Float64Array,
): BenchRow {
  return {
    benchmark,
    messages: n,
    "bytes/msg": bytes,
    "in flight": window,
    "msgs/s": Math.round(n / (elapsedMs / 1_000)),
    "p50 ms": roundMs(percentile(latencies, 50)),
    "p99 ms": roundMs(percentile(latencies, 99)),
  };
}

/** Send and receive times by sequence number, and a count of arrivals to wait on. */
class Clock {
  readonly latencies: Float64Array;
  readonly arrivals = new Arrivals();
  private readonly sentAt: Float64Array;

  constructor(n: number) {
    this.sentAt = new Float64Array(n);
    this.latencies = new Float64Array(n);
  }

  sent(seq: number): void {
    this.sentAt[seq] = performance.now();
  }

  received(seq: number): void {
    this.latencies[seq] = performance.now() - this.sentAt[seq];
    this.arrivals.arrive();
  }
}

/** A counter one task can wait on; a watchdog turns a lost message into an error instead of a hang. */
class Arrivals {
  private count = 0;
  private target = Infinity;
  private waiter?: () => void;
  private error?: unknown;
  private readonly deadline = performance.now() + SCENARIO_TIMEOUT_MS;

  arrive(): void {
    // Waking the waiter only at its target keeps the bookkeeping off the per-message path.
    if (++this.count >= this.target) this.wake();
  }

  fail(error: unknown): void {
    this.error ??= error;
    this.wake();
  }

  /**
   * True when `window` of the `sent` messages have not arrived. Senders then wait for half the window and
   * refill it at once, and never await while there is room: every await lets the NATS client flush, so
   * awaiting per message would turn each message into its own socket write.
   */
  isFull(sent: number, window: number): boolean {
    return sent - this.count >= window;
  }

  /** Resolves once `k` arrivals were counted. */
  async atLeast(k: number): Promise<void> {
    while (this.count < k) {
      if (this.error) throw this.error;
      const remaining = this.deadline - performance.now();
      if (remaining <= 0) {
        throw new Error(
          `Benchmark scenario timed out: ${this.count} of ${k} arrivals after ${SCENARIO_TIMEOUT_MS} ms`,
        );
      }
      this.target = k;
      const timer = setTimeout(() => this.wake(), remaining);
      await new Promise<void>((r) => this.waiter = r);
      clearTimeout(timer);
      this.target = Infinity;
    }
    if (this.error) throw this.error;
  }

  private wake(): void {
    const waiter = this.waiter;
    this.waiter = undefined;
    waiter?.();
  }
}
