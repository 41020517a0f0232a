/**
 * History reads: how many reads of one run's events per second. It provisions an EVENTS-like stream, stores
 * `RUNS` runs of `EVENTS_PER_RUN` events (a 3-step workflow records about a dozen), interleaved, and reads
 * every run in a random order, pass after pass, one read at a time and 16 at a time. Each read is the one an
 * activation makes (engine/history/read_history.ts): a `last_by_subj` get of the run's first event, then the
 * walk from its sequence, one `next_by_subj` get per event and one that finds nothing. Rows:
 * - first read: by a client that has not read the run before (readStream, 14 gets);
 * - read again: through read_cache.ts, by a client that read every run before: nothing added (one get after
 *   the last event remembered and one check of the first: 2 gets; the start is remembered, not looked up), or
 *   one or four events added to every run before each pass (3 or 6 gets), as an activation reads what a few
 *   events since its last read added (a step stores about five: docs/performance.md, cost model);
 * - consumer per read: the read before readStream (one ordered consumer created and deleted per read).
 *
 * On one managed nats-server by default. `COMPOZY_BENCH_CLUSTER=1` then also starts three nats-servers
 * clustered on loopback, as the cluster bench and test do (test/support/nats_cluster.ts: the authentication
 * module of `compozy dev`, authenticated routes, waiting for the meta leader), with an R3 stream, and reads
 * from a node that does not lead the stream (as two in three clients of a cluster do): each get then crosses a
 * route to the leader and back. The CPU columns are milliseconds per read of the bench's client and of every
 * nats-server together, from /proc (10 ms ticks): they tell which side a figure is bound by.
 */
import { DeliverPolicy, jetstream, type JetStreamClient, jetstreamManager } from "@nats-io/jetstream";
import { connectNats, lastSequenceOf, readStream, readStreamCached } from "../pkg/nats/mod.ts";
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
      const stored = new Map(runs.map((run) => [run, EVENTS_PER_RUN]));
      const bench: Bench = { runs, stored, nodes };
      // What an engine or API that read every run once remembers (read_cache.ts).
      await Promise.all(runs.map((run) => readFromStart(js, run, true)));
      let added = 0;
      const addEach = (count: number) => async () => {
        await Promise.all(runs.flatMap((run) =>
          Array.from({ length: count }, async () => {
            await js.publish(`bench.${run}.task.evts.${run}.n${++added}`, new Uint8Array(200));
            stored.set(run, stored.get(run)! + 1);
          })
        ));
      };
      const rows: BenchRow[] = [];
      const consumerReads = size === 1 ? READS : CONSUMER_READS_CLUSTERED;
      const row = (
        concurrency: number,
        scenario: string,
        reads: number,
        read: (run: string) => Promise<unknown[]>,
        each?: () => Promise<void>,
      ) => measure(bench, `${scenario}, ${where}`, concurrency, reads, read, each).then((r) => rows.push(r));
      // The rows that add events come last: the others read runs of EVENTS_PER_RUN events.
      for (const concurrency of [1, 16]) {
        await row(
          concurrency,
          "first read: readStream from the run's start",
          READS,
          (run) => readFromStart(js, run, false),
        );
        await row(
          concurrency,
          "read again, nothing added (read_cache.ts)",
          READS,
          (run) => readFromStart(js, run, true),
        );
        await row(
          concurrency,
          "consumer per read (before readStream)",
          consumerReads,
          (run) => consumerPerRead(js, filterOf(run)),
        );
      }
      for (const concurrency of [1, 16]) {
        for (const [count, label] of [[1, "one event"], [4, "four events"]] as const) {
          await row(
            concurrency,
            `read again, ${label} added (read_cache.ts)`,
            READS,
            (run) => readFromStart(js, run, true),
            addEach(count),
          );
        }
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

/**
 * The read of an activation (engine/history/read_history.ts): the run's first event looked up by its literal
 * subject, then the walk from there, through what this client remembers or not.
 */
async function readFromStart(js: JetStreamClient, run: string, cached: boolean): Promise<unknown[]> {
  const start = `bench.${run}.task.evts.${run}.e0`;
  if (cached) {
    return await readStreamCached(js, STREAM, filterOf(run), {
      startAtLastOf: start,
      fromSeq: () => lastSequenceOf(js, STREAM, start),
    });
  }
  return await readStream(js, STREAM, filterOf(run), { fromSeq: await lastSequenceOf(js, STREAM, start) });
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

interface Bench {
  runs: string[];
  /** How many events each run has stored. */
  stored: Map<string, number>;
  nodes: Nodes;
}

/**
 * `reads` reads, `concurrency` at a time, in passes over every run in a random order; `beforePass` (not
 * timed) runs before each pass.
 */
async function measure(
  bench: Bench,
  scenario: string,
  concurrency: number,
  reads: number,
  read: (run: string) => Promise<unknown[]>,
  beforePass?: () => Promise<void>,
): Promise<BenchRow> {
  const latencies: number[] = [];
  const serversCpu = () => bench.nodes.pids().reduce((sum, pid) => sum + processCpuSeconds(pid), 0);
  let seconds = 0;
  let clientCpu = 0;
  let serverCpu = 0;
  for (let done = 0; done < reads;) {
    await beforePass?.();
    const pass = shuffled(bench.runs).slice(0, reads - done);
    done += pass.length;
    const clientBefore = processCpuSeconds(Deno.pid);
    const serversBefore = serversCpu();
    const started = performance.now();
    await Promise.all(Array.from({ length: concurrency }, async () => {
      for (let run = pass.pop(); run !== undefined; run = pass.pop()) {
        const t0 = performance.now();
        const events = await read(run);
        latencies.push(performance.now() - t0);
        const expected = bench.stored.get(run);
        if (events.length !== expected) {
          throw new Error(`read ${events.length} of ${expected} events of ${run}`);
        }
      }
    }));
    seconds += (performance.now() - started) / 1_000;
    clientCpu += processCpuSeconds(Deno.pid) - clientBefore;
    serverCpu += serversCpu() - serversBefore;
  }
  const msPerRead = (cpuSeconds: number) => Math.round(cpuSeconds * 1_000_000 / reads) / 1_000;
  return {
    scenario,
    "in flight": concurrency,
    reads,
    "reads/s": Math.round(reads / seconds),
    "p50 ms": roundMs(percentile(latencies, 50)),
    "p99 ms": roundMs(percentile(latencies, 99)),
    "client CPU ms/read": msPerRead(clientCpu),
    "servers CPU ms/read": msPerRead(serverCpu),
  };
}

function shuffled<T>(items: readonly T[]): T[] {
  const copy = [...items];
  for (let i = copy.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [copy[i], copy[j]] = [copy[j], copy[i]];
  }
  return copy;
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
