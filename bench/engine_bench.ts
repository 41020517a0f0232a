/**
 * Engine benchmarks (issue 4): per-step overhead of a 20-step sequential workflow of no-op tools, completed
 * 3-step workflows per second with 200 in flight, a collection of 10,000 items, and the engine's memory with
 * 10,000 executions parked on a wait task.
 *
 * Set-up: a managed nats-server with file storage, the engine in this process, the runtime as its own
 * process (`pkg/runtime/main.ts`), tools in its sandboxed worker processes — the shape of `compozy dev`.
 * Events are timed by a core NATS subscription to the state-event subjects.
 */
import { fileURLToPath } from "node:url";
import type { Subscription } from "@nats-io/transport-node";
import { loadProject } from "../engine/domain/project/mod.ts";
import { type EngineHandle, startEngine } from "../engine/mod.ts";
import { Bus, connectNats, ManagedNatsServer, provisionJetStream } from "../pkg/nats/mod.ts";
import { percentile, roundMs } from "./_stats.ts";
import { WireTap } from "./_wire_tap.ts";
import type { BenchRow } from "./_table.ts";

const RUNTIME_MAIN = fileURLToPath(new URL("../pkg/runtime/main.ts", import.meta.url));

const noop = (id: string, n: number) =>
  Array.from({ length: n }, (_, i) => `  - id: ${id}-${i}\n    use: tool(id=noop)\n`).join("");

const PROJECT: Record<string, string> = {
  "compozy.yaml": `name: bench
workflows:
  - source: ./seq20.yaml
  - source: ./three.yaml
  - source: ./fanout.yaml
  - source: ./parked.yaml
`,
  "tools.ts": "export default () => ({});\n",
  "seq20.yaml": `id: seq20\ntools:\n  - id: noop\n    execute: ./tools.ts\ntasks:\n${noop("s", 20)}`,
  "three.yaml": `id: three\ntools:\n  - id: noop\n    execute: ./tools.ts\ntasks:\n${noop("t", 3)}`,
  "fanout.yaml": `id: fanout
tools:
  - id: noop
    execute: ./tools.ts
tasks:
  - id: each
    type: collection
    items: "{{ .workflow.input.items }}"
    max_workers: 100
    task:
      id: one
      use: tool(id=noop)
      with: { i: "{{ .index }}" }
`,
  "parked.yaml": `id: parked\ntasks:\n  - id: hold\n    type: wait\n    signal: never\n`,
};

interface Stack {
  natsUrl: string;
  /** The bench's own processes, for CPU from /proc (other nats-servers on the machine are not ours). */
  pids: { nats: number; runtime: number };
  bus: Bus;
  engine: EngineHandle;
  runtime: Deno.ChildProcess;
  publishes: () => number;
  close(): Promise<void>;
}

async function startStack(): Promise<Stack> {
  const dir = await Deno.makeTempDir({ prefix: "compozy-bench-" });
  for (const [path, text] of Object.entries(PROJECT)) await Deno.writeTextFile(`${dir}/${path}`, text);
  const nats = await ManagedNatsServer.start({ storeDir: `${dir}/.compozy` });
  const nc = await connectNats(nats.url, { name: "bench-engine" });
  await provisionJetStream(nc);
  const bus = new Bus(nc, { source: "engine" });
  // Count the awaited JetStream writes the engine makes (its critical path).
  let published = 0;
  const publish = bus.publish.bind(bus);
  bus.publish = (...args) => {
    published++;
    return publish(...args);
  };
  const engine = await startEngine({ nc, bus, project: await loadProject(dir), instanceId: "bench" });
  const runtime = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", RUNTIME_MAIN, "--nats-url", nats.url, "--exit-with-parent"],
    env: { COMPOZY_LOG_LEVEL: "warn", LOG_FORMAT: "json" },
    stdin: "piped",
    stdout: "null",
    stderr: "null",
  }).spawn();
  await waitForRuntime(bus);
  return {
    natsUrl: nats.url,
    pids: { nats: nats.pid, runtime: runtime.pid },
    bus,
    engine,
    runtime,
    publishes: () => published,
    async close() {
      await engine.stop();
      runtime.kill("SIGTERM");
      await runtime.status;
      await nc.close();
      await nats.stop();
      await Deno.remove(dir, { recursive: true });
    },
  };
}

async function waitForRuntime(bus: Bus): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    try {
      await bus.nc.request("compozy.health.runtime", undefined, { timeout: 500 });
      return;
    } catch {
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  throw new Error("the runtime did not start");
}

/** Resolves when the execution's workflow success event arrives; collects its task success times. */
function follow(bus: Bus, execId: string): { done: Promise<number>; steps: number[]; stop(): void } {
  const steps: number[] = [];
  let resolve!: (t: number) => void;
  const done = new Promise<number>((r) => resolve = r);
  const subs: Subscription[] = [
    bus.nc.subscribe(`compozy.${execId}.task.evts.*.success`, {
      callback: () => {
        steps.push(performance.now());
      },
    }),
    bus.nc.subscribe(`compozy.${execId}.workflow.evts.${execId}.*`, {
      callback: () => resolve(performance.now()),
    }),
  ];
  return { done, steps, stop: () => subs.forEach((s) => s.unsubscribe()) };
}

async function perStep(stack: Stack): Promise<BenchRow[]> {
  const samples: number[] = [];
  const runs = 40;
  let steps: number[] = [];
  let finished: () => void = () => {};
  // One subscription for all runs (they run one at a time), so no event is missed while subscribing.
  const subs = [
    stack.bus.nc.subscribe("compozy.*.task.evts.*.success", {
      callback: () => {
        steps.push(performance.now());
      },
    }),
    stack.bus.nc.subscribe("compozy.*.workflow.evts.*.success", { callback: () => finished() }),
  ];
  const before = stack.publishes();
  for (let run = 0; run < runs + 5; run++) {
    steps = [];
    const done = new Promise<void>((r) => finished = r);
    await stack.engine.client.trigger("seq20", {});
    await done;
    // The first 5 runs warm the sandbox pool; a step is the gap between two recorded task successes.
    if (run >= 5) { for (let i = 1; i < steps.length; i++) samples.push(steps[i] - steps[i - 1]); }
  }
  const writes = (stack.publishes() - before) / ((runs + 5) * 20);
  subs.forEach((s) => s.unsubscribe());
  return [{
    benchmark: "20 sequential no-op tool steps",
    samples: samples.length,
    "p50 ms/step": roundMs(percentile(samples, 50)),
    "p99 ms/step": roundMs(percentile(samples, 99)),
    "awaited JS writes/step": Math.round(writes * 100) / 100,
  }];
}

async function throughput(stack: Stack): Promise<BenchRow[]> {
  const total = 3_000;
  const inFlight = 200;
  let started = 0;
  let completed = 0;
  let failed = 0;
  const { promise: allDone, resolve } = Promise.withResolvers<void>();
  const sub = stack.bus.nc.subscribe("compozy.*.workflow.evts.*.*", {
    callback: (_e, msg) => {
      const type = msg.subject.split(".")[5];
      if (type !== "success" && type !== "failed") return;
      if (type === "failed") failed++;
      if (++completed === total) resolve();
      else if (started < total) startOne();
    },
  });
  const startOne = () => {
    started++;
    stack.engine.client.trigger("three", {}).catch(() => failed++);
  };
  const cpu0 = await cpuTimes(stack);
  const t0 = performance.now();
  for (let i = 0; i < inFlight; i++) startOne();
  await allDone;
  const seconds = (performance.now() - t0) / 1_000;
  const cpu1 = await cpuTimes(stack);
  // CPU per workflow by process (Linux clock ticks are 10 ms): where the two cores go.
  const cpuMs = (name: string) =>
    Math.round(((cpu1[name] ?? 0) - (cpu0[name] ?? 0)) * 10 / total * 100) / 100;
  sub.unsubscribe();
  return [{
    benchmark: `3-step workflows, ${inFlight} in flight`,
    workflows: total,
    failed,
    "workflows/s": Math.round(total / seconds),
    "steps/s": Math.round((total * 3) / seconds),
    "CPU ms/wf engine": cpuMs("engine"),
    "CPU ms/wf nats": cpuMs("nats"),
    "CPU ms/wf runtime": cpuMs("runtime"),
    "CPU ms/wf sandbox": cpuMs("sandbox"),
  }];
}

/**
 * The cost model of one step (20-step sequential workflows of no-op tools): what crosses NATS per step,
 * classified by a wire tap (see _wire_tap.ts), the JetStream writes the engine awaits, and CPU per step by
 * process, measured in a run without the tap.
 */
async function costModel(stack: Stack): Promise<BenchRow[]> {
  const runs = 10;
  const steps = runs * 20;
  const runAll = async () => {
    for (let i = 0; i < runs; i++) {
      const { execId } = await stack.engine.client.trigger("seq20", {});
      await stack.engine.client.waitForEnd(execId, 120_000);
    }
  };
  await runAll(); // Warm the sandbox pool.
  const cpu0 = await cpuTimes(stack);
  const awaited0 = stack.publishes();
  await runAll();
  const cpu1 = await cpuTimes(stack);
  const awaited = (stack.publishes() - awaited0) / steps;
  const tap = await WireTap.start(stack.natsUrl);
  try {
    await tap.take();
    await runAll();
    const counts = await tap.take();
    const perStep = (n: number) => Math.round(n / steps * 100) / 100;
    const cpuMs = (name: string) =>
      Math.round(((cpu1[name] ?? 0) - (cpu0[name] ?? 0)) * 10 / steps * 100) / 100;
    return [{
      benchmark: "cost per step (20-step workflows, waited for by the client)",
      "JS awaited": Math.round(awaited * 100) / 100,
      ...Object.fromEntries(Object.entries(counts).map(([k, v]) => [k, perStep(v)])),
      "CPU ms engine": cpuMs("engine"),
      "CPU ms nats": cpuMs("nats"),
      "CPU ms runtime": cpuMs("runtime"),
      "CPU ms sandbox": cpuMs("sandbox"),
    }];
  } finally {
    await tap.stop();
  }
}

async function collection(stack: Stack): Promise<BenchRow[]> {
  const items = Array.from({ length: 10_000 }, (_, i) => i);
  let peak = Deno.memoryUsage().rss;
  const sampler = setInterval(() => peak = Math.max(peak, Deno.memoryUsage().rss), 50);
  const cpu0 = await cpuTimes(stack);
  const t0 = performance.now();
  const { execId } = await stack.engine.client.trigger("fanout", { items });
  const followed = follow(stack.bus, execId);
  const end = await followed.done;
  followed.stop();
  clearInterval(sampler);
  // The state manager folds asynchronously: how long until queries see the end.
  const state = await stack.engine.client.waitForEnd(execId, 120_000);
  const settled = performance.now();
  const cpu1 = await cpuTimes(stack);
  // CPU per item by process (clock ticks of 10 ms over the whole run): what each item costs each process.
  const cpuMs = (name: string) =>
    Math.round(((cpu1[name] ?? 0) - (cpu0[name] ?? 0)) * 10 / items.length * 1000) / 1000;
  return [{
    benchmark: "collection of 10,000 items, max_workers 100",
    status: state?.status ?? "?",
    "wall s": Math.round((end - t0) / 100) / 10,
    "state settled +s": Math.round((settled - end) / 100) / 10,
    "items/s": Math.round(items.length / ((end - t0) / 1_000)),
    "engine peak RSS MiB": mib(peak),
    "runtime RSS MiB": mib(await rssOf(stack.runtime.pid)),
    "CPU ms/item engine": cpuMs("engine"),
    "CPU ms/item nats": cpuMs("nats"),
    "CPU ms/item runtime": cpuMs("runtime"),
    "CPU ms/item sandbox": cpuMs("sandbox"),
  }];
}

/** Memory after a full collection when the benchmark runs with --v8-flags=--expose-gc (deno task bench). */
function memoryAfterGc(): Deno.MemoryUsage {
  (globalThis as { gc?: () => void }).gc?.();
  return Deno.memoryUsage();
}

async function parked(stack: Stack): Promise<BenchRow[]> {
  const total = 10_000;
  const before = memoryAfterGc();
  let waiting = 0;
  const { promise: allParked, resolve } = Promise.withResolvers<void>();
  const sub = stack.bus.nc.subscribe("compozy.*.task.evts.*.waiting_started", {
    callback: () => {
      if (++waiting === total) resolve();
    },
  });
  const t0 = performance.now();
  let next = 0;
  await Promise.all(Array.from({ length: 100 }, async () => {
    while (next < total) {
      next++;
      await stack.engine.client.trigger("parked", {});
    }
  }));
  await allParked;
  const seconds = (performance.now() - t0) / 1_000;
  sub.unsubscribe();
  // Let the last drivers park and release their memory.
  await new Promise((r) => setTimeout(r, 2_000));
  const after = memoryAfterGc();
  return [{
    benchmark: "10,000 executions parked on a wait task",
    "parked/s": Math.round(total / seconds),
    "active drivers": stack.engine.activeExecutions(),
    "engine heap before MiB": mib(before.heapUsed),
    "engine heap after MiB": mib(after.heapUsed),
    "engine RSS before MiB": mib(before.rss),
    "engine RSS after MiB": mib(after.rss),
  }];
}

async function rssOf(pid: number): Promise<number> {
  try {
    const kb = /^VmRSS:\s+(\d+) kB/m.exec(await Deno.readTextFile(`/proc/${pid}/status`))?.[1];
    return Number(kb ?? 0) * 1024;
  } catch {
    return 0;
  }
}

function mib(bytes: number): number {
  return Math.round(bytes / 1024 / 1024);
}

export async function benchEngine(): Promise<BenchRow[]> {
  const stack = await startStack();
  try {
    // BENCH_ENGINE=step,throughput,… runs a subset (e.g. under a profiler).
    const only = Deno.env.get("BENCH_ENGINE")?.split(",").filter(Boolean);
    const rows: BenchRow[] = [];
    const scenarios = { step: perStep, cost: costModel, throughput, collection, parked };
    for (const [name, scenario] of Object.entries(scenarios)) {
      if (!only?.length || only.includes(name)) rows.push(...await scenario(stack));
    }
    return rows;
  } finally {
    await stack.close();
  }
}

if (import.meta.main) {
  const { formatTable } = await import("./_table.ts");
  console.log(formatTable("Workflow engine", await benchEngine()));
  Deno.exit(0);
}

/**
 * CPU clock ticks used so far by this process ("engine"), the bench's nats-server, its runtime and the
 * runtime's sandbox processes, live or ended (from /proc; Linux only). Other nats-servers on a shared machine are not
 * counted.
 */
async function cpuTimes(stack: Stack): Promise<Record<string, number>> {
  const stats = new Map<number, { ppid: number; ticks: number; reapedTicks: number }>();
  for await (const entry of Deno.readDir("/proc")) {
    if (!/^\d+$/.test(entry.name)) continue;
    try {
      const stat = await Deno.readTextFile(`/proc/${entry.name}/stat`);
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      stats.set(Number(entry.name), {
        ppid: Number(fields[1]),
        ticks: Number(fields[11]) + Number(fields[12]),
        // cutime + cstime: what its children that ended used (a sandbox process that exited).
        reapedTicks: Number(fields[13]) + Number(fields[14]),
      });
    } catch {
      // The process ended while we looked.
    }
  }
  const nameOf = (pid: number): string => {
    if (pid === Deno.pid) return "engine";
    if (pid === stack.pids.nats) return "nats";
    if (pid === stack.pids.runtime) return "runtime";
    // A descendant of the runtime is a sandbox process.
    for (let p = stats.get(pid)?.ppid; p && p > 1; p = stats.get(p)?.ppid) {
      if (p === stack.pids.runtime) return "sandbox";
    }
    return "";
  };
  const out: Record<string, number> = {};
  for (const [pid, { ticks }] of stats) {
    const name = nameOf(pid);
    if (name) out[name] = (out[name] ?? 0) + ticks;
  }
  // Sandbox processes that ended are counted through their parent, or the figure would go down.
  out.sandbox = (out.sandbox ?? 0) + (stats.get(stack.pids.runtime)?.reapedTicks ?? 0);
  return out;
}
