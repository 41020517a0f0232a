/**
 * History reads: how many reads of one run's events per second, reading the way `readStream` does (single
 * message gets, a consumer only past 64 messages) against the way it did before (one ordered consumer
 * created and deleted per read). It provisions an EVENTS-like stream, stores `RUNS` runs of
 * `EVENTS_PER_RUN` events (a 3-step workflow records about a dozen), and reads random runs, one at a time
 * and 16 at a time.
 *
 * On its own managed nats-server (one node) by default. `COMPOZY_BENCH_CLUSTER=1` starts three nats-servers
 * clustered on loopback and uses an R3 stream; the first node is the one the client talks to.
 */
import { DeliverPolicy, jetstream, type JetStreamClient, jetstreamManager } from "@nats-io/jetstream";
import { connectNats, readStream } from "../pkg/nats/mod.ts";
import { findNatsServerBinary } from "../pkg/nats/server.ts";
import type { BenchRow } from "./_table.ts";
import { percentile, roundMs } from "./_stats.ts";

const STREAM = "BENCH_EVENTS";
const RUNS = 200;
const EVENTS_PER_RUN = 12;
const READS = 1_000;

export async function benchHistory(): Promise<BenchRow[]> {
  const clustered = Deno.env.get("COMPOZY_BENCH_CLUSTER") === "1";
  const servers = await startServers(clustered ? 3 : 1);
  try {
    const nc = await connectNats(servers.urls.join(","), { name: "bench-history" });
    try {
      const js = jetstream(nc);
      const jsm = await jetstreamManager(nc);
      await addStreamWhenReady(jsm, clustered ? 3 : 1);
      const runs = Array.from({ length: RUNS }, () => crypto.randomUUID());
      const publishes = [];
      for (let e = 0; e < EVENTS_PER_RUN; e++) {
        for (const run of runs) {
          publishes.push(js.publish(`bench.${run}.task.evts.${run}.e${e}`, new Uint8Array(200)));
        }
      }
      await Promise.all(publishes);
      const where = clustered ? "3 nodes, R3" : "1 node, R1";
      const rows: BenchRow[] = [];
      for (const concurrency of [1, 16]) {
        rows.push(
          await measure(
            `readStream (gets), ${where}`,
            concurrency,
            runs,
            (run) => readStream(js, STREAM, `bench.${run}.*.evts.*.*`),
          ),
        );
        rows.push(
          await measure(
            `consumer per read (before), ${where}`,
            concurrency,
            runs,
            (run) => consumerPerRead(js, `bench.${run}.*.evts.*.*`),
          ),
        );
      }
      const left = (await jsm.consumers.list(STREAM).next()).length;
      rows.push({ scenario: `consumers left on the stream after ${rows.length * READS} reads`, reads: left });
      return rows;
    } finally {
      await nc.close();
    }
  } finally {
    await servers.stop();
  }
}

async function measure(
  scenario: string,
  concurrency: number,
  runs: string[],
  read: (run: string) => Promise<unknown[]>,
): Promise<BenchRow> {
  const latencies: number[] = [];
  let next = 0;
  const started = performance.now();
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < READS) {
      next++;
      const run = runs[Math.floor(Math.random() * runs.length)];
      const t0 = performance.now();
      const events = await read(run);
      latencies.push(performance.now() - t0);
      if (events.length !== EVENTS_PER_RUN) throw new Error(`read ${events.length} events of ${run}`);
    }
  }));
  const seconds = (performance.now() - started) / 1_000;
  return {
    scenario,
    "in flight": concurrency,
    reads: READS,
    "reads/s": Math.round(READS / seconds),
    "p50 ms": roundMs(percentile(latencies, 50)),
    "p99 ms": roundMs(percentile(latencies, 99)),
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

/** A clustered stream needs a meta leader first: retry its creation while the cluster elects one. */
async function addStreamWhenReady(jsm: Awaited<ReturnType<typeof jetstreamManager>>, replicas: number) {
  const deadline = Date.now() + 30_000;
  while (true) {
    try {
      await jsm.streams.add({ name: STREAM, subjects: ["bench.*.*.evts.*.*"], num_replicas: replicas });
      return;
    } catch (e) {
      if (Date.now() > deadline) {
        throw new Error("Cannot create the bench stream: no JetStream leader", { cause: e });
      }
      await new Promise((r) => setTimeout(r, 500));
    }
  }
}

/** `n` nats-servers with JetStream on free loopback ports, clustered when `n` > 1. */
async function startServers(n: number): Promise<{ urls: string[]; stop(): Promise<void> }> {
  const binary = await findNatsServerBinary();
  const dir = await Deno.makeTempDir({ prefix: "compozy-bench-history-" });
  const ports = Array.from({ length: n }, () => [freePort(), freePort()]);
  const routes = ports.map(([, cluster]) => `nats://127.0.0.1:${cluster}`).join(",");
  const children = ports.map(([client, cluster], i) => {
    const args = ["-a", "127.0.0.1", "-p", String(client), "-js", "-sd", `${dir}/n${i}`, "-n", `n${i}`];
    if (n > 1) {
      args.push("--cluster_name", "bench", "--cluster", `nats://127.0.0.1:${cluster}`, "--routes", routes);
    }
    return new Deno.Command(binary, { args, stdout: "null", stderr: "null" }).spawn();
  });
  return {
    urls: ports.map(([client]) => `nats://127.0.0.1:${client}`),
    async stop() {
      for (const child of children) {
        child.kill("SIGTERM");
        await child.status;
      }
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    },
  };
}

function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}
