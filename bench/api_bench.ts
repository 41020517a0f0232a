/**
 * The HTTP API under load: 2,000 signed webhook calls over 50 concurrent connections against `compozy dev`
 * (a real subprocess: managed NATS, engine, runtime, API) running the e2e project's two-tool `hello`
 * workflow. Every call must be answered with a status (accepted or refused, never dropped), and every
 * accepted execution must reach a terminal state: none lost.
 *
 * Run: `deno run -A bench/api_bench.ts` (or `deno task bench api`)
 *
 * @module
 */
import { signBody } from "../server/constant_time.ts";
import { FIXTURE_PROJECT, startDev } from "../test/e2e/support/dev_server.ts";
import { percentile, roundMs } from "./_stats.ts";

const CALLS = 2_000;
const CONNECTIONS = 50;
const SECRET = "e2e-webhook-secret";
/** How long accepted executions get to end after the last call was answered. */
const DRAIN_TIMEOUT_MS = 180_000;

export async function benchApi(): Promise<Array<Record<string, string | number>>> {
  const dev = await startDev({ fixture: FIXTURE_PROJECT });
  try {
    const load = await sendWebhooks(dev.url);
    const drain = await awaitTerminal(dev.url, load.accepted);
    const refused = Object.entries(load.statuses).filter(([s]) => s !== "202" && s !== "200");
    return [
      {
        benchmark: `webhook POST, signed, ${CONNECTIONS} connections`,
        calls: CALLS,
        accepted: load.accepted.length,
        refused: refused.map(([s, n]) => `${n}×${s}`).join(" ") || 0,
        "no answer": load.failures,
        "req/s": Math.round(CALLS / (load.seconds)),
        "p50 ms": roundMs(percentile(load.latencies, 50)),
        "p99 ms": roundMs(percentile(load.latencies, 99)),
      },
      {
        benchmark: "accepted executions → terminal",
        calls: load.accepted.length,
        accepted: Object.entries(drain.byStatus).map(([s, n]) => `${n} ${s}`).join(", "),
        refused: "",
        "no answer": `${drain.lost} lost`,
        "req/s": Math.round(load.accepted.length / drain.seconds),
        "p50 ms": "",
        "p99 ms": `drained in ${drain.seconds.toFixed(1)} s`,
      },
    ];
  } finally {
    await dev.stop();
    await Deno.remove(dev.dir, { recursive: true });
  }
}

interface LoadResult {
  accepted: string[];
  statuses: Record<string, number>;
  /** Calls that got no HTTP answer at all (connection errors). */
  failures: number;
  latencies: number[];
  seconds: number;
}

async function sendWebhooks(url: string): Promise<LoadResult> {
  const result: LoadResult = { accepted: [], statuses: {}, failures: 0, latencies: [], seconds: 0 };
  let next = 0;
  const worker = async () => {
    while (next < CALLS) {
      const i = next++;
      const body = JSON.stringify({ user: { name: `user-${i}` } });
      const started = performance.now();
      try {
        const res = await fetch(`${url}/api/webhooks/hello`, {
          method: "POST",
          body,
          headers: {
            "content-type": "application/json",
            "x-compozy-signature": signBody(SECRET, new TextEncoder().encode(body)),
          },
        });
        const answer = await res.json();
        result.latencies.push(performance.now() - started);
        result.statuses[res.status] = (result.statuses[res.status] ?? 0) + 1;
        if (res.status === 202 || res.status === 200) result.accepted.push(answer.exec_id);
      } catch {
        result.failures++;
      }
    }
  };
  const started = performance.now();
  await Promise.all(Array.from({ length: CONNECTIONS }, worker));
  result.seconds = (performance.now() - started) / 1_000;
  return result;
}

async function awaitTerminal(
  url: string,
  execIds: string[],
): Promise<{ byStatus: Record<string, number>; lost: number; seconds: number }> {
  const started = performance.now();
  const terminal = new Map<string, string>();
  const deadline = Date.now() + DRAIN_TIMEOUT_MS;
  while (terminal.size < execIds.length && Date.now() < deadline) {
    const pending = execIds.filter((id) => !terminal.has(id));
    for (let i = 0; i < pending.length; i += CONNECTIONS) {
      await Promise.all(
        pending.slice(i, i + CONNECTIONS).map(async (id) => {
          const res = await fetch(`${url}/api/executions/${id}`);
          if (res.status !== 200) return void await res.body?.cancel();
          const { status } = await res.json();
          if (["SUCCESS", "FAILED", "TIMED_OUT", "CANCELED"].includes(status)) terminal.set(id, status);
        }),
      );
    }
    if (terminal.size < execIds.length) await new Promise((r) => setTimeout(r, 500));
  }
  const byStatus: Record<string, number> = {};
  for (const status of terminal.values()) byStatus[status] = (byStatus[status] ?? 0) + 1;
  return { byStatus, lost: execIds.length - terminal.size, seconds: (performance.now() - started) / 1_000 };
}

if (import.meta.main) {
  const { formatTable } = await import("./_table.ts");
  console.log(formatTable("HTTP API", await benchApi()));
}
