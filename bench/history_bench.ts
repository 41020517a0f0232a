/**
 * History reads: how many reads of one run's events per second, reading the way `readStream` does (single
 * message gets, a consumer only past 64 messages) against the way it did before (one ordered consumer
 * created and deleted per read). It provisions an EVENTS-like stream, stores `RUNS` runs of
 * `EVENTS_PER_RUN` events (a 3-step workflow records about a dozen), and reads random runs, one at a time
 * and 16 at a time. "from the run's start" is the read an activation makes (engine/history/read_history.ts):
 * one `last_by_subj` get of the run's first event, then the walk from its sequence; "from sequence 1" walks
 * from the stream's start, which costs nats-server 2.9 a scan of the stream's messages before the run.
 *
 * On one managed nats-server by default. `COMPOZY_BENCH_CLUSTER=1` then also starts three nats-servers
 * clustered on loopback, as the cluster bench and test do (test/support/nats_cluster.ts: the authentication
 * module of `compozy dev`, authenticated routes, waiting for the meta leader), with an R3 stream, and reads
 * from a node that does not lead the stream (as two in three clients of a cluster do): each get then crosses a
 * route to the leader and back. The CPU columns are milliseconds per read of the bench's client and of every
 * nats-server together, from /proc (10 ms ticks): they tell which side a figure is bound by.
 */
import { DeliverPolicy, jetstream, type JetStreamClient, jetstreamManager } from "@nats-io/jetstream";
import { connectNats, lastSequenceOf, readStream } from "../pkg/nats/mod.ts";
import { startTestNats } from "../test/support/nats.ts";
import { startTestCluster } from "../test/support/nats_cluster.ts";
import type { BenchRow } from "./_table.ts";
import { onInterrupt } from "./_interrupt.ts";
import { percentile, processCpuSeconds, roundMs } from "./_stats.ts";

const STREAM = "BENCH_EVENTS";
const RUNS = 200;
const EVENTS_PER_RUN = 12;
const READS = 1_000;
/** A consumer per read costs ~65 ms on three nodes: fewer reads keep the bench within a minute. */
const CONSUMER_READS_CLUSTERED = 150;

interface Nodes {
  /** URLs with credentials, of the node the client reads from. */
  urlOf(index: number): string;
  count: number;
  pids(): number[];
  stop(): Promise<void>;
}

export async function benchHistory(): Promise<BenchRow[]> {
  const rows: BenchRow[] = [];
  const sizes = Deno.env.get("COMPOZY_BENCH_CLUSTER") === "1" ? [1, 3] : [1];
  for (const size of sizes) rows.push(...await benchOn(size));
  return rows;
}

async function benchOn(size: number): Promise<BenchRow[]> {
  const nodes = await startNodes(size);
  const forget = onInterrupt(() => nodes.stop());
  try {
    const where = size === 1 ? "1 node, R1" : `${size} nodes, R3, client on a follower`;
    const runs = await fill(nodes.urlOf(0), size);
    const nc = await connectNats(nodes.urlOf(await followerIndex(nodes)), { name: "bench-history" });
    try {
      const js = jetstream(nc);
      const jsm = await jetstreamManager(nc);
      const rows: BenchRow[] = [];
      const consumerReads = size === 1 ? READS : CONSUMER_READS_CLUSTERED;
      for (const concurrency of [1, 16]) {
        rows.push(
          await measure(
            `readStream from the run's start, ${where}`,
            concurrency,
            READS,
            runs,
            nodes,
            (run) => readFromStart(js, run),
          ),
        );
        rows.push(
          await measure(
            `readStream from sequence 1, ${where}`,
            concurrency,
            READS,
            runs,
            nodes,
            (run) => readStream(js, STREAM, filterOf(run)),
          ),
        );
        rows.push(
          await measure(
            `consumer per read (before), ${where}`,
            concurrency,
            consumerReads,
            runs,
            nodes,
            (run) => consumerPerRead(js, filterOf(run)),
          ),
        );
      }
      const reads = rows.reduce((sum, row) => sum + Number(row.reads), 0);
      const left = (await jsm.consumers.list(STREAM).next()).length;
      rows.push({ scenario: `consumers left on the stream after ${reads} reads, ${where}`, reads: left });
      return rows;
    } finally {
      await nc.close();
    }
  } finally {
    forget();
    await nodes.stop();
  }
}

function filterOf(run: string): string {
  return `bench.${run}.*.evts.*.*`;
}

/** The read of an activation: the run's first event looked up by its literal subject, then the walk. */
async function readFromStart(js: JetStreamClient, run: string): Promise<unknown[]> {
  const fromSeq = await lastSequenceOf(js, STREAM, `bench.${run}.task.evts.${run}.e0`);
  return await readStream(js, STREAM, filterOf(run), { fromSeq });
}

/** Creates the stream and stores the runs' events, interleaved as concurrent executions write them. */
async function fill(url: string, size: number): Promise<string[]> {
  const nc = await connectNats(url, { name: "bench-history-fill" });
  try {
    const js = jetstream(nc);
    const jsm = await jetstreamManager(nc);
    await jsm.streams.add({
      name: STREAM,
      subjects: ["bench.*.*.evts.*.*"],
      num_replicas: size === 1 ? 1 : 3,
    });
    const runs = Array.from({ length: RUNS }, () => crypto.randomUUID());
    const publishes = [];
    for (let e = 0; e < EVENTS_PER_RUN; e++) {
      for (const run of runs) {
        publishes.push(js.publish(`bench.${run}.task.evts.${run}.e${e}`, new Uint8Array(200)));
      }
    }
    await Promise.all(publishes);
    return runs;
  } finally {
    await nc.close();
  }
}

/** A node that does not lead the stream (the only node of one). */
async function followerIndex(nodes: Nodes): Promise<number> {
  if (nodes.count === 1) return 0;
  const nc = await connectNats(nodes.urlOf(0), { name: "bench-history-leader" });
  try {
    const leader = (await (await jetstreamManager(nc)).streams.info(STREAM)).cluster?.leader;
    // startTestCluster names its nodes n1, n2, n3.
    const index = Array.from({ length: nodes.count }, (_, i) => i).find((i) => `n${i + 1}` !== leader);
    if (index === undefined) {
      throw new Error(`No node of ${nodes.count} follows ${STREAM} (leader ${leader})`);
    }
    return index;
  } finally {
    await nc.close();
  }
}

async function measure(
  scenario: string,
  concurrency: number,
  reads: number,
  runs: string[],
  nodes: Nodes,
  read: (run: string) => Promise<unknown[]>,
): Promise<BenchRow> {
  const latencies: number[] = [];
  let next = 0;
  const serversCpu = () => nodes.pids().reduce((sum, pid) => sum + processCpuSeconds(pid), 0);
  const clientBefore = processCpuSeconds(Deno.pid);
  const serversBefore = serversCpu();
  const started = performance.now();
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < reads) {
      next++;
      const run = runs[Math.floor(Math.random() * runs.length)];
      const t0 = performance.now();
      const events = await read(run);
      latencies.push(performance.now() - t0);
      if (events.length !== EVENTS_PER_RUN) throw new Error(`read ${events.length} events of ${run}`);
    }
  }));
  const seconds = (performance.now() - started) / 1_000;
  const msPerRead = (cpuSeconds: number) => Math.round(cpuSeconds * 1_000_000 / reads) / 1_000;
  return {
    scenario,
    "in flight": concurrency,
    reads,
    "reads/s": Math.round(reads / seconds),
    "p50 ms": roundMs(percentile(latencies, 50)),
    "p99 ms": roundMs(percentile(latencies, 99)),
    "client CPU ms/read": msPerRead(processCpuSeconds(Deno.pid) - clientBefore),
    "servers CPU ms/read": msPerRead(serversCpu() - serversBefore),
  };
}

/** The read as it was: an ordered consumer per call, deleted afterwards. */
async function consumerPerRead(js: JetStreamClient, filter: string): Promise<unknown[]> {
  const consumer = await js.consumers.get(STREAM, {
    filter_subjects: filter,
    deliver_policy: DeliverPolicy.All,
  });
  try {
    let remaining = (await consumer.info(true)).num_pending;
    const out: unknown[] = [];
    while (remaining > 0) {
      const batch = await consumer.fetch({ max_messages: remaining, expires: 2_000 });
      for await (const msg of batch) {
        out.push(msg.seq);
        remaining = msg.info.pending;
      }
    }
    return out;
  } finally {
    await consumer.delete();
  }
}

/**
 * One managed nats-server, or a cluster of `size` that has elected its meta leader. The bench used to start
 * bare nats-servers and ask for a JetStream manager at once: before the election (3-6 s) its API check timed
 * out and the clustered bench failed, unmeasured.
 */
async function startNodes(size: number): Promise<Nodes> {
  if (size === 1) {
    const nats = await startTestNats();
    return { count: 1, urlOf: () => nats.url, pids: () => [nats.server.pid], stop: () => nats.stop() };
  }
  const cluster = await startTestCluster(size);
  const urls = cluster.url.split(",");
  return {
    count: size,
    urlOf: (index) => urls[index],
    pids: () => cluster.nodes.map((n) => n.pid),
    stop: () => cluster.stop(),
  };
}
