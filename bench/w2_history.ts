/**
 * Throughput against history (issue 11: "after 50,000 finished executions on one stack, W2 within 10% of a
 * fresh stack"). Starts `compozy dev` from a checkout on the peer harness's project and runs W2-shaped rounds
 * on that one stack: 3-step workflows through `POST /api/workflows/w3/executions?wait=60s`, 200 in flight.
 * Per round: workflows/s, errors, CPU ms per workflow of each process of the dev session (engine and API,
 * nats-server, runtime, sandboxes; `utime + stime` from /proc, ended children included), the engine's peak
 * and final RSS, and the load average. A fall of workflows/s or a rise of a process's CPU per workflow from
 * round to round at the same load is what grows with history.
 *
 *   deno run -A bench/w2_history.ts [checkout] [rounds] [workflows per round] [project]
 *
 * Defaults: this checkout, 25 rounds of 2,000 (50,000 executions), ../shared/peers/compozy/project. Run it
 * under `nice -n 19` on a shared machine and read each round's figure with its load.
 */
import { fileURLToPath } from "node:url";

const here = fileURLToPath(new URL("..", import.meta.url));
const checkout = Deno.args[0] ?? here;
const rounds = Number(Deno.args[1] ?? 25);
const perRound = Number(Deno.args[2] ?? 2_000);
const project = Deno.args[3] ?? `${here}/../shared/peers/compozy/project`;
const IN_FLIGHT = 200;

interface Sample {
  ticks: number;
  rssMiB: number;
}

/** CPU ticks (own and of ended children) and RSS of a process; zeros once it is gone. */
function sample(pid: number): Sample {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const status = Deno.readTextFileSync(`/proc/${pid}/status`);
    const rssKiB = Number(/^VmRSS:\s+(\d+)/m.exec(status)?.[1] ?? 0);
    return { ticks: Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14]), rssMiB: rssKiB / 1024 };
  } catch {
    return { ticks: 0, rssMiB: 0 };
  }
}

/** The dev session's processes by role, from their command lines. */
function processesOf(group: number): Array<{ pid: number; role: string }> {
  const ps = new Deno.Command("ps", { args: ["-o", "pid=,args=", "-g", String(group)] }).outputSync();
  const out: Array<{ pid: number; role: string }> = [];
  for (const line of new TextDecoder().decode(ps.stdout).trim().split("\n")) {
    const m = /^\s*(\d+)\s+(.*)$/.exec(line);
    if (!m) continue;
    const args = m[2];
    const role = args.includes("nats-server")
      ? "nats"
      : args.includes("runtime")
      ? "runtime"
      : args.includes("sandbox")
      ? "sandbox"
      : args.includes("main.ts") && / dev /.test(args)
      ? "engine"
      : "";
    if (role) out.push({ pid: Number(m[1]), role });
  }
  return out;
}

async function untilHealthy(api: string): Promise<void> {
  const deadline = Date.now() + 120_000;
  while (Date.now() < deadline) {
    try {
      const res = await fetch(`${api}/api/health`);
      await res.body?.cancel();
      if (res.ok) return;
    } catch {
      // Not listening yet.
    }
    await new Promise((r) => setTimeout(r, 500));
  }
  throw new Error("compozy dev did not answer /api/health in 120 s");
}

async function runW3(api: string): Promise<void> {
  const res = await fetch(`${api}/api/workflows/w3/executions?wait=60s`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: '{"input":{}}',
  });
  const body = await res.json();
  if (String(body?.status).toUpperCase() !== "SUCCESS") {
    throw new Error(`unexpected result: ${JSON.stringify(body).slice(0, 200)}`);
  }
}

const work = await Deno.makeTempDir({ prefix: "w2-history-" });
await new Deno.Command("cp", { args: ["-r", `${project}/.`, work] }).output();
const port = 20_000 + Math.floor(Math.random() * 20_000);
const dev = new Deno.Command("setsid", {
  args: ["deno", "task", "compozy", "dev", "--cwd", work, "--port", String(port)],
  cwd: checkout,
  stdout: "null",
  stderr: "null",
}).spawn();
const api = `http://127.0.0.1:${port}`;
try {
  await untilHealthy(api);
  console.log(
    `# ${new Date().toISOString()} ${checkout}: ${rounds} rounds of ${perRound}, ${IN_FLIGHT} in flight`,
  );
  for (let round = 0; round < rounds; round++) {
    // Sandbox processes come and go: the session's processes are listed again each round.
    const procs = processesOf(dev.pid);
    const before = new Map(procs.map((p) => [p.pid, sample(p.pid).ticks]));
    const engines = procs.filter((p) => p.role === "engine");
    let peak = 0;
    const sampler = setInterval(() => {
      for (const p of engines) peak = Math.max(peak, sample(p.pid).rssMiB);
    }, 200);
    let next = 0;
    let errors = 0;
    const t0 = performance.now();
    await Promise.all(Array.from({ length: IN_FLIGHT }, async () => {
      while (next < perRound) {
        next++;
        await runW3(api).catch(() => errors++);
      }
    }));
    const seconds = (performance.now() - t0) / 1_000;
    clearInterval(sampler);
    const cpu: Record<string, number> = {};
    for (const p of procs) {
      cpu[p.role] = (cpu[p.role] ?? 0) + (sample(p.pid).ticks - before.get(p.pid)!) * 10 / perRound;
    }
    const load = Deno.readTextFileSync("/proc/loadavg").split(" ")[0];
    console.log(
      [
        `round ${round + 1}`,
        `history ${round * perRound}`,
        `wf/s ${(perRound / seconds).toFixed(1)}`,
        `errors ${errors}`,
        `CPU ms/wf ${Object.entries(cpu).map(([k, v]) => `${k} ${v.toFixed(2)}`).join(" ")}`,
        `engine RSS peak ${peak.toFixed(0)} after ${engines.map((p) => sample(p.pid).rssMiB.toFixed(0))} MiB`,
        `load ${load}`,
        new Date().toISOString().slice(11, 19),
      ].join(", "),
    );
  }
  await new Promise((r) => setTimeout(r, 10_000));
  const engines = processesOf(dev.pid).filter((p) => p.role === "engine");
  console.log(`10 s idle after: engine RSS ${engines.map((p) => sample(p.pid).rssMiB.toFixed(0))} MiB`);
} finally {
  try {
    Deno.kill(-dev.pid, "SIGTERM");
    await new Promise((r) => setTimeout(r, 2_000));
    Deno.kill(-dev.pid, "SIGKILL");
  } catch {
    // The group ended on SIGTERM.
  }
  await dev.status;
  await Deno.remove(work, { recursive: true });
}
