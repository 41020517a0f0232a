/**
 * `deno task bench cluster`: work sharing across engine and runtime processes (issue 12). For each topology,
 * a managed nats-server (or a 3-node loopback cluster at R3) with `compozy start --role engine|runtime`
 * processes, then N three-step workflows triggered over NATS (64 in flight) and followed to their end.
 *
 * Reported per topology: executions that did not end SUCCESS; workflows/s from the first trigger to the last end; executions moved between
 * engines mid-run (each engine's `taken_over` count), commands redelivered and lease renewals (with those
 * that went unanswered, were lost, or expired); and CPU seconds of each
 * kind of process (from /proc, the process group of each `compozy start`, so a runtime's sandboxes count)
 * per 1,000 workflows. On a shared 2-core machine the wall-clock figures are noisy; the counts and CPU per
 * workflow are what compares.
 *
 * "R3 2+2 parks" runs R3 2+2 with a workflow whose execution parks once (a 200 ms sleep between two steps):
 * its wake-up may reach either engine, and "moved mid-run" counts those another engine resumed.
 * "R3 2+2 kills" runs R3 2+2 again with a kill -9 of one engine a third into the run and of the node leading
 * WORKFLOW_CMDS two thirds in (and at least 10 s after the engine, so that the two fail-overs do not
 * overlap), and reports the fail-over: how long after each kill every execution running then had recorded its
 * next event. Each kill's time is printed, to be matched with the processes' logs (LOG_DIR below).
 *
 * A second table gives each process's figures per workflow: CPU ms of each engine, runtime (with its
 * sandboxes), nats-server node and of the bench's own client, and the NATS messages each engine's
 * connection received and sent. A figure that grows from 1 + 1 to 2 + 2 is work the second engine adds.
 *
 * COMPOZY_CLUSTER_BENCH_RUNS (default 1000) sets N; COMPOZY_CLUSTER_BENCH_TOPOLOGIES picks topologies by name
 * (e.g. "R1 1+1,R1 2+2"; default all six); COMPOZY_CLUSTER_BENCH_LOG_DIR=dir keeps each process's output
 * there (COMPOZY_LOG_LEVEL, default warn, sets how much); COMPOZY_CLUSTER_BENCH_CPU_PROF=dir runs each
 * `compozy start` with `--cpu-prof` writing there. Interrupted (SIGINT, SIGTERM), it stops what it
 * started.
 */
import { join } from "node:path";
import type { NatsConnection } from "@nats-io/transport-node";
import { createExecutionClient, ENGINE_HEALTH_SUBJECT, type ExecutionClient } from "../engine/mod.ts";
import { ENGINE_STATS_SUBJECT, type EngineStatsReport } from "../engine/engine_stats.ts";
import type { LeaseStatus } from "../engine/leases.ts";
import { loadProject } from "../engine/domain/project/mod.ts";
import { jetstreamManager } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { BUCKETS, Bus, connectNats, credentialsEnv, type NatsRole, STREAMS } from "../pkg/nats/mod.ts";
import { RUNTIME_HEALTH_SUBJECT } from "../pkg/runtime/service.ts";
import { writeProject } from "../test/support/engine.ts";
import { startTestNats } from "../test/support/nats.ts";
import { startTestCluster, type TestCluster } from "../test/support/nats_cluster.ts";
import { untilAnswered } from "../test/support/health.ts";
import { type CompozyProcess, spawnCompozy } from "../test/e2e/support/dev_server.ts";
import { type BenchRow, formatTable } from "./_table.ts";
import { onInterrupt } from "./_interrupt.ts";
import { processCpuSeconds } from "./_stats.ts";
import { subscribeTapped } from "./_tapped_subjects.ts";

const RUNS = Number(Deno.env.get("COMPOZY_CLUSTER_BENCH_RUNS") ?? 1_000);
const IN_FLIGHT = 64;
/** Where each process's output is written at the end of its topology, when set. */
const LOG_DIR = Deno.env.get("COMPOZY_CLUSTER_BENCH_LOG_DIR");
/** Counts every message of the run by subject class (SubjectTap), when set. */
const TAP = Deno.env.get("COMPOZY_CLUSTER_BENCH_TAP") === "1";
/** Where each `compozy start` writes its V8 CPU profile, when set. */
const CPU_PROF_DIR = Deno.env.get("COMPOZY_CLUSTER_BENCH_CPU_PROF");

interface Topology {
  name: string;
  nodes: 1 | 3;
  engines: number;
  runtimes: number;
  /** Kill -9 one engine a third into the run, and the node leading WORKFLOW_CMDS two thirds in. */
  kills?: boolean;
  /** Run "parks" (a step, a 200 ms sleep that parks the execution, a step) instead of "three". */
  parks?: boolean;
}

const TOPOLOGIES: Topology[] = [
  { name: "R1 1+1", nodes: 1, engines: 1, runtimes: 1 },
  { name: "R1 2+2", nodes: 1, engines: 2, runtimes: 2 },
  { name: "R3 1+1", nodes: 3, engines: 1, runtimes: 1 },
  { name: "R3 2+2", nodes: 3, engines: 2, runtimes: 2 },
  { name: "R3 2+2 kills", nodes: 3, engines: 2, runtimes: 2, kills: true },
  { name: "R3 2+2 parks", nodes: 3, engines: 2, runtimes: 2, parks: true },
];

const PROJECT: Record<string, string> = {
  "compozy.yaml": "name: cluster-bench\nworkflows:\n  - source: ./wf.yaml\n  - source: ./parks.yaml\n",
  "parks.yaml": `id: parks
tools:
  - id: echo
    execute: ./echo.ts
tasks:
  - id: a
    use: tool(id=echo)
    with: { n: 1 }
  - id: nap
    type: sleep
    duration: 200ms
  - id: b
    use: tool(id=echo)
    with: { n: 2 }
`,
  "wf.yaml": `id: three
tools:
  - id: echo
    execute: ./echo.ts
tasks:
  - id: a
    use: tool(id=echo)
    with: { n: 1 }
  - id: b
    use: tool(id=echo)
    with: { n: 2 }
  - id: c
    use: tool(id=echo)
    with: { n: 3 }
`,
  "echo.ts": "export default (input: unknown) => input;\n",
};

export async function benchCluster(): Promise<BenchRow[]> {
  const wanted = Deno.env.get("COMPOZY_CLUSTER_BENCH_TOPOLOGIES")?.split(",").map((s) => s.trim());
  const rows: BenchRow[] = [];
  const perProcess: BenchRow[] = [];
  for (const topology of TOPOLOGIES.filter((t) => !wanted || wanted.includes(t.name))) {
    const from = perProcess.length;
    rows.push(await runTopology(topology, perProcess));
    // At once, so that a later topology's failure (a time-out at load 50) does not take this one's figures.
    console.error(formatTable(`${topology.name} (so far)`, [rows.at(-1)!, ...perProcess.slice(from)]));
  }
  console.log(formatTable("Per process and workflow (bench/cluster_bench.ts)", perProcess));
  return rows;
}

async function runTopology(topology: Topology, perProcess: BenchRow[]): Promise<BenchRow> {
  const nats = topology.nodes === 1 ? await startTestNats() : await startTestCluster(3);
  const dir = await writeProject(PROJECT);
  const processes: { role: NatsRole; id: string; process: CompozyProcess }[] = [];
  let nc: NatsConnection | undefined;
  const forget = onInterrupt(async () => {
    // Interrupted: nothing is measured any more, so no graceful stop.
    for (const { process } of processes) await process.killGroup().catch(() => {});
    await nats.stop();
    await Deno.remove(dir, { recursive: true });
  });
  try {
    const env = (role: NatsRole) => ({
      NATS_URL: nats.plainUrl,
      ...credentialsEnv(nats.auth.users[role]),
      COMPOZY_NATS_REPLICAS: String(topology.nodes),
      COMPOZY_LOG_LEVEL: Deno.env.get("COMPOZY_LOG_LEVEL") ?? "warn",
      // On a loaded machine a sandbox's cold start may pass the default 10 s: such executions fail at once
      // (tool_timeout) and would count as quick ends. What is measured here is the work sharing.
      COMPOZY_SANDBOX_START_TIMEOUT_MS: "60000",
    });
    const profile = (id: string) =>
      CPU_PROF_DIR
        ? [
          "--cpu-prof",
          `--cpu-prof-dir=${CPU_PROF_DIR}`,
          `--cpu-prof-name=${topology.name.replaceAll(/\W+/g, "_")}-${id}.cpuprofile`,
        ]
        : [];
    const start = (role: NatsRole, id: string) =>
      processes.push({
        role,
        id,
        process: spawnCompozy(
          ["start", "--role", role, "--cwd", dir, "--instance-id", id],
          env(role),
          profile(id),
        ),
      });
    for (let i = 0; i < topology.engines; i++) start("engine", `engine-${i + 1}`);
    for (let i = 0; i < topology.runtimes; i++) start("runtime", `runtime-${i + 1}`);
    nc = await connectNats(nats.url, { name: "cluster-bench" });
    await untilAnswered(nc, ENGINE_HEALTH_SUBJECT, topology.engines);
    await untilAnswered(nc, RUNTIME_HEALTH_SUBJECT, topology.runtimes);
    const client = await createExecutionClient({
      nc,
      bus: new Bus(nc, { source: "bench" }),
      project: await loadProject(dir),
    });
    // One warm-up execution per runtime, so that no tool's first load is in the figures.
    await runAll(client, "three", topology.runtimes * 2, "warm");
    const cpuBefore = processes.map((p) => groupCpuSeconds(p.process.pid));
    const nodes = () => "nodes" in nats ? nats.nodes : [nats.server];
    const nodePids = nodes().map((n) => n.pid);
    const nodeCpuBefore = nodePids.map(processCpuSeconds);
    const clientCpuBefore = processCpuSeconds(Deno.pid);
    const statsBefore = await engineStats(nc, topology.engines);
    const kills = topology.kills
      ? new Kills(client, processes[0].process, nc, nats as TestCluster)
      : undefined;
    const tap = TAP ? await SubjectTap.start(nats.url) : undefined;
    const began = performance.now();
    const workflow = topology.parks ? "parks" : "three";
    const { failed, seenEnded } = await runAll(client, workflow, RUNS, "run", kills);
    const seconds = (performance.now() - began) / 1_000;
    if (tap) console.error(`${topology.name}: messages per workflow by subject\n${await tap.stop(RUNS)}`);
    // The killed engine's figures die with it: the survivors' are compared with their own before the run.
    const statsAfter = await engineStats(nc, topology.engines - (kills ? 1 : 0));
    const survivors = new Set(statsAfter.map((r) => r.instance));
    const before = statsBefore.filter((r) => survivors.has(r.instance));
    const cpu = processes.map((p, i) => groupCpuSeconds(p.process.pid) - cpuBefore[i]);
    const msPerWorkflow = (seconds: number) => round(seconds * 1_000 / RUNS, 2);
    const messages = (instance: string, way: "in" | "out") => {
      const after = statsAfter.find((r) => r.instance === instance)?.nats_messages?.[way];
      const before = statsBefore.find((r) => r.instance === instance)?.nats_messages?.[way] ?? 0;
      return after === undefined ? "" : round((after - before) / RUNS, 1);
    };
    for (const [i, { id }] of processes.entries()) {
      perProcess.push({
        topology: topology.name,
        process: id,
        "CPU ms/wf": survivors.has(id) || !id.startsWith("engine") ? msPerWorkflow(cpu[i]) : "killed",
        "NATS msgs in/wf": messages(id, "in"),
        "NATS msgs out/wf": messages(id, "out"),
      });
    }
    for (const [i, pid] of nodePids.entries()) {
      // A node killed mid-run (and restarted under another pid) reports nothing.
      const after = nodes()[i].pid === pid ? processCpuSeconds(pid) : NaN;
      perProcess.push({
        topology: topology.name,
        process: `nats n${i + 1}`,
        "CPU ms/wf": Number.isNaN(after) ? "killed" : msPerWorkflow(after - nodeCpuBefore[i]),
      });
    }
    perProcess.push({
      topology: topology.name,
      process: "bench client",
      "CPU ms/wf": msPerWorkflow(processCpuSeconds(Deno.pid) - clientCpuBefore),
    });
    const perThousand = (role: NatsRole) =>
      round(
        cpu.filter((_, i) => processes[i].role === role).reduce((a, b) => a + b, 0) / (RUNS / 1_000),
        2,
      );
    const sum = (key: "taken_over" | "redeliveries", reports: EngineStatsReport[]) =>
      reports.reduce((a, r) => a + (r[key] ?? 0), 0);
    const renewals = (outcome: LeaseStatus, reports: EngineStatsReport[]) =>
      reports.reduce((a, r) => a + (r.lease_renewals?.[outcome] ?? 0), 0);
    const renewalsDuring = (outcome: LeaseStatus) =>
      renewals(outcome, statsAfter) - renewals(outcome, before);
    return {
      topology: topology.name,
      workflows: RUNS,
      "not SUCCESS": failed,
      "wf/s": round(RUNS / seconds, 1),
      "moved mid-run": sum("taken_over", statsAfter) - sum("taken_over", before),
      redeliveries: sum("redeliveries", statsAfter) - sum("redeliveries", before),
      "lease renewals": renewalsDuring("held") + renewalsDuring("unconfirmed") + renewalsDuring("lost") +
        renewalsDuring("expired"),
      "unconfirmed/lost/expired": `${renewalsDuring("unconfirmed")}/${renewalsDuring("lost")}/${
        renewalsDuring("expired")
      }`,
      "engine CPU s /1k wf (all)": perThousand("engine"),
      "engine CPU s /1k wf (per engine)": round(perThousand("engine") / topology.engines, 2),
      "runtime CPU s /1k wf (all)": perThousand("runtime"),
      "end seen after (p50/max s)": await endLag(client, nc, seenEnded),
      ...(kills ? await kills.report() : {}),
    };
  } finally {
    forget();
    await nc?.close();
    await Promise.all(processes.map((p) => p.process.stop()));
    if (LOG_DIR) {
      for (const [i, { role, process }] of processes.entries()) {
        const file = join(LOG_DIR, `${topology.name.replaceAll(/\W+/g, "_")}-${role}-${i}.log`);
        await Deno.writeTextFile(file, process.lines.join("\n") + "\n");
      }
      const nodes = "nodes" in nats ? nats.nodes : [nats.server];
      for (const [i, node] of nodes.entries()) {
        const file = join(LOG_DIR, `${topology.name.replaceAll(/\W+/g, "_")}-nats-${i + 1}.log`);
        await Deno.writeTextFile(file, node.logTail());
      }
    }
    await nats.stop();
    await Deno.remove(dir, { recursive: true });
  }
}

/**
 * Triggers `count` executions, at most IN_FLIGHT at once, and waits for each to end; returns how many did
 * not end SUCCESS (the first one's error is printed) and when each end was seen (its state document's).
 */
async function runAll(
  client: ExecutionClient,
  workflow: string,
  count: number,
  prefix: string,
  kills?: Kills,
): Promise<{ failed: number; seenEnded: Map<string, number> }> {
  let next = 0;
  let failed = 0;
  const inFlight = new Set<string>();
  const seenEnded = new Map<string, number>();
  const worker = async () => {
    while (next < count) {
      const i = next++;
      await kills?.at(i / count, inFlight);
      const { execId } = await client.trigger(workflow, { i }, { idempotencyKey: `${prefix}-${i}` });
      inFlight.add(execId);
      const state = await client.waitForEnd(execId, 300_000);
      seenEnded.set(execId, Date.now());
      inFlight.delete(execId);
      if (state.status === "SUCCESS") continue;
      if (failed++ === 0) {
        console.error(`execution ${execId} ended ${state.status}: ${JSON.stringify(state.error)}`);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(IN_FLIGHT, count) }, worker));
  return { failed, seenEnded };
}

/** An end seen this much later than it was stored is late: its timeline is printed (see printTimeline). */
const LATE_END_MS = 3_000;
/** Late ends whose timeline is printed at most. */
const TIMELINES = 3;

/**
 * How long after its end event was stored the end of each execution was seen by a client waiting on its
 * state document (the state manager's lag: each of the 64 workers waits that long before its next trigger).
 * The timelines of the latest ends go to stderr: what the state stored when, against the history.
 */
async function endLag(
  client: ExecutionClient,
  nc: NatsConnection,
  seenEnded: Map<string, number>,
): Promise<string> {
  const lags: { id: string; lag: number; events: Awaited<ReturnType<ExecutionClient["events"]>> }[] = [];
  let unread = 0;
  for (const [id, seen] of seenEnded) {
    // A read may time out on a loaded machine (or while a killed node's streams elect a leader): the figure
    // goes on without that execution, and says how many it left out.
    const events = await client.events(id).catch(() => undefined);
    if (!events) {
      unread++;
      continue;
    }
    const end = events.find((e) => /^workflow\.(success|failed|canceled|timed_out)$/.test(e.type));
    if (end) lags.push({ id, lag: seen - Date.parse(end.time), events });
  }
  lags.sort((a, b) => a.lag - b.lag);
  if (lags.length === 0) return "no end events";
  const late = lags.filter((l) => l.lag > LATE_END_MS);
  for (const l of late.slice(-TIMELINES)) {
    await printTimeline(nc, l.id, l.events, seenEnded.get(l.id)!).catch((e) =>
      console.error(`timeline of ${l.id} not read: ${e}`)
    );
  }
  const s = (ms: number) => (ms / 1_000).toFixed(2);
  return `${s(lags[Math.floor(lags.length / 2)].lag)}/${s(lags[lags.length - 1].lag)} (${late.length} > ${
    LATE_END_MS / 1_000
  } s${unread ? `, ${unread} histories not read` : ""})`;
}

/**
 * One late end's evidence on stderr, in milliseconds after its execution's start: each stored event, each
 * stored revision of its execution's and its tasks' state documents (with the status written), and when
 * the client saw the end.
 */
async function printTimeline(
  nc: NatsConnection,
  execId: string,
  events: Awaited<ReturnType<ExecutionClient["events"]>>,
  seen: number,
): Promise<void> {
  const t0 = Date.parse(events[0].time);
  const lines: [number, string][] = events.map((e) => [Date.parse(e.time) - t0, `event ${e.seq} ${e.type}`]);
  const kvm = new Kvm(nc);
  const revisions = async (bucket: string, key: string) => {
    const kv = await kvm.open(bucket);
    for await (const entry of await kv.history({ key })) {
      const status = entry.operation === "PUT" ? entry.json<{ status?: string }>().status : entry.operation;
      lines.push([entry.created.getTime() - t0, `${bucket} ${entry.key} rev ${entry.revision} ${status}`]);
    }
  };
  await revisions(BUCKETS.workflowExecutions, execId);
  await revisions(BUCKETS.taskExecutions, `${execId}.>`);
  lines.push([seen - t0, "client saw the end"]);
  lines.sort((a, b) => a[0] - b[0]);
  console.error(`late end of ${execId}:\n${lines.map(([t, what]) => `  ${t} ms  ${what}`).join("\n")}`);
}

/**
 * The fail-over figures: how long after a kill every execution that was running then recorded its next
 * event. Executions of a live engine go on at once; those of the dead engine (or whose streams lost their
 * leader) wait for the fail-over, so the slowest one measures it (plus one step's time on this machine).
 */
/** The node is killed at least this long after the engine (see Kills.at). */
const NODE_KILL_AFTER_MS = 10_000;

class Kills {
  private engineKill?: Promise<Resumption>;
  private nodeKill?: Promise<Resumption>;

  constructor(
    private readonly client: ExecutionClient,
    private readonly engine: CompozyProcess,
    private readonly nc: NatsConnection,
    private readonly cluster: TestCluster,
  ) {}

  /** Called as the run progresses (`fraction` of its executions triggered): kills on cue. */
  async at(fraction: number, inFlight: Set<string>): Promise<void> {
    if (fraction >= 1 / 3 && !this.engineKill) {
      const running = [...inFlight];
      const killedAt = Date.now(); // SIGKILL is sent at once; the wait is for the process's exit.
      console.error(`engine killed at ${new Date(killedAt).toISOString()} (${running.length} running)`);
      this.engineKill = this.engine.killGroup().then(() => ({ running, killedAt }));
      await this.engineKill;
    }
    if (fraction >= 2 / 3 && !this.nodeKill) {
      // Not before the engine's fail-over is over: a node killed during it (a short run at a light load) adds
      // its leader elections to the engine's figure. This worker waits; the others go on triggering.
      this.nodeKill = (async () => {
        const { killedAt: engineKilledAt } = await this.engineKill!;
        await new Promise((r) =>
          setTimeout(r, Math.max(0, engineKilledAt + NODE_KILL_AFTER_MS - Date.now()))
        );
        const running = [...inFlight];
        const jsm = await jetstreamManager(this.nc);
        // JetStream may take a while to answer at load 50: a few tries before the run fails.
        let leader: string | undefined;
        for (let tries = 1; leader === undefined; tries++) {
          try {
            leader = (await jsm.streams.info(STREAMS.workflowCommands)).cluster?.leader ?? "";
          } catch (e) {
            if (tries === 5) throw e;
          }
        }
        const index = this.cluster.nodes.findIndex((_, n) => `n${n + 1}` === leader);
        if (index < 0) throw new Error(`the leader of ${STREAMS.workflowCommands} (${leader}) is not ours`);
        const killedAt = Date.now();
        console.error(
          `node ${leader} killed at ${new Date(killedAt).toISOString()} (${running.length} running)`,
        );
        await this.cluster.nodes[index].kill();
        return { running, killedAt };
      })();
      await this.nodeKill;
    }
  }

  async report(): Promise<BenchRow> {
    const figures = async (kill: Promise<Resumption> | undefined) => {
      if (!kill) return "not reached";
      const { running, killedAt } = await kill;
      const delays: number[] = [];
      let unread = 0;
      for (const id of running) {
        // A read may time out on a loaded machine: that execution is left out, and counted.
        const events = await this.client.events(id).catch(() => undefined);
        if (!events) {
          unread++;
          continue;
        }
        const after = events.map((e) => Date.parse(e.time)).filter((t) => t >= killedAt);
        if (after.length > 0) delays.push(Math.min(...after) - killedAt);
      }
      delays.sort((a, b) => a - b);
      const at = (q: number) =>
        (delays[Math.min(delays.length - 1, Math.floor(q * delays.length))] / 1_000).toFixed(1);
      return delays.length === 0
        ? `no event after the kill (${running.length} running)`
        : `${at(1)} s (p50 ${at(0.5)} s, ${delays.length} running${unread ? `, ${unread} not read` : ""})`;
    };
    return {
      "engine kill: all resumed within": await figures(this.engineKill),
      "node kill: all resumed within": await figures(this.nodeKill),
    };
  }
}

interface Resumption {
  running: string[];
  killedAt: number;
}

async function engineStats(nc: NatsConnection, count: number): Promise<EngineStatsReport[]> {
  const reports: EngineStatsReport[] = [];
  const replies = await nc.requestMany(ENGINE_STATS_SUBJECT, undefined, {
    strategy: "stall",
    stall: 500,
    maxWait: 5_000,
  });
  for await (const reply of replies) reports.push(reply.json<EngineStatsReport>());
  if (reports.length < count) throw new Error(`${reports.length} of ${count} engines reported their figures`);
  return reports;
}

/** CPU seconds (user + system) of every live process in the group led by `pid`, from /proc. */
function groupCpuSeconds(pid: number): number {
  const ticksPerSecond = 100;
  let ticks = 0;
  for (const entry of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(entry.name)) continue;
    let stat: string;
    try {
      stat = Deno.readTextFileSync(join("/proc", entry.name, "stat"));
    } catch {
      continue; // It exited between the listing and the read.
    }
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    // After the command: state, ppid, pgrp, ..., utime (index 11), stime, cutime, cstime.
    if (Number(fields[2]) !== pid) continue;
    ticks += Number(fields[11]) + Number(fields[12]) + Number(fields[13]) + Number(fields[14]);
  }
  return ticks / ticksPerSecond;
}

function round(value: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}

/**
 * Every message of the account during a run, by subject class: the JetStream API by operation and stream
 * or consumer, KV writes by bucket, acknowledgements and deliveries by consumer, events by kind; inboxes
 * (replies) as one class. Per workflow, the 30 largest classes. Not the core requests whose "no responders"
 * answer is their meaning (presence, call holders: see _tapped_subjects.ts).
 */
class SubjectTap {
  private readonly counts = new Map<string, number>();
  private constructor(private readonly nc: NatsConnection) {}

  static async start(url: string): Promise<SubjectTap> {
    const nc = await connectNats(url, { name: "bench-subject-tap" });
    const tap = new SubjectTap(nc);
    subscribeTapped(nc, (msg) => tap.count(msg.subject, msg.reply));
    await nc.flush();
    return tap;
  }

  private count(subject: string, reply?: string): void {
    const t = subject.split(".");
    let key: string;
    if (t[0] === "$JS" && t[1] === "API") {
      key = t.slice(0, t[2] === "CONSUMER" || t[2] === "STREAM" ? 6 : 4).join(".");
    } else if (t[0] === "$JS" && t[1] === "ACK") key = `$JS.ACK.${t[2]}.${t[3]}`;
    else if (t[0] === "$KV") key = `$KV.${t[1]}`;
    else if (t[0] === "compozy" && t.length >= 6) key = `compozy.*.${t[2]}.${t[3]}.*.${t[5]}`;
    else if (t[0].startsWith("_INBOX") || t[0].startsWith("_I_") || t[0].includes("INBOX")) key = "(inbox)";
    else key = t.slice(0, 3).join(".");
    if (reply?.startsWith("$JS.ACK.")) key = `delivery ${reply.split(".").slice(2, 4).join(".")}`;
    this.counts.set(key, (this.counts.get(key) ?? 0) + 1);
  }

  async stop(runs: number): Promise<string> {
    await this.nc.close();
    return [...this.counts].sort((a, b) => b[1] - a[1]).slice(0, 30)
      .map(([k, n]) => `  ${(n / runs).toFixed(2).padStart(8)}  ${k}`).join("\n");
  }
}
