/**
 * Chaos script (review R-E1): `compozy dev` on a copy of ./project, ~22 executions of `steps` (sequential tool
 * tasks) started, then dev's managed nats-server killed with SIGKILL three times (each after dev reported it
 * back; dev stops at the 4th exit within a minute), one more execution started 2 s after the last kill (a probe:
 * a consumer that stopped delivering leaves it stuck too), then every execution must end within 90 s. Prints the
 * stuck ones with their last events and the dev log lines naming them, and exits 1 when there are any.
 *
 * Not a test of the suite (it takes a minute or two and loads the machine):
 *   nice -n 10 deno run -A test/e2e/chaos/nats_kill_chaos.ts [--executions 22] [--kills 3] [--keep]
 * Options: --workflow steps|quick_steps, --first-kill-ms 300, --start-gap-ms 40, --gap-ms 1500, --end-wait-s 90.
 * `--keep` leaves the project copy (dev.log, and .compozy/ with the NATS store) for a post-mortem; it is kept
 * anyway when an execution is stuck.
 */
import { join, resolve } from "node:path";
import { startDev } from "../support/dev_server.ts";
import { childrenNamed, gone } from "../support/processes.ts";

/** `--name value` options, and `--keep`. */
function option(name: string, fallback: string): string {
  const at = Deno.args.indexOf(`--${name}`);
  return at >= 0 && at + 1 < Deno.args.length ? Deno.args[at + 1] : fallback;
}
const args = {
  executions: option("executions", "22"),
  kills: option("kills", "3"),
  "gap-ms": option("gap-ms", "1500"),
  "end-wait-s": option("end-wait-s", "90"),
  "log-level": option("log-level", "info"),
  keep: Deno.args.includes("--keep"),
};
const EXECUTIONS = Number(args.executions);
const WORKFLOW = option("workflow", "steps");
const FIRST_KILL_MS = Number(option("first-kill-ms", "300"));
const START_GAP_MS = Number(option("start-gap-ms", "40"));
const KILLS = Math.min(3, Number(args.kills));
const GAP_MS = Number(args["gap-ms"]);
const END_WAIT_MS = Number(args["end-wait-s"]) * 1_000;
const PROJECT = resolve(import.meta.dirname!, "project");
const ENDED = new Set(["SUCCESS", "FAILED", "CANCELED", "TIMED_OUT"]);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const stamp = () => new Date().toISOString().slice(11, 23);
const say = (line: string) => console.log(`${stamp()} ${line}`);

const dev = await startDev({ fixture: PROJECT, env: { COMPOZY_LOG_LEVEL: args["log-level"] } });
say(`dev pid ${dev.pid} at ${dev.url}, project ${dev.dir}`);
let stuck = 0;
try {
  // Starts retried through the outage (a 503 while NATS is away); each start has its own idempotency key.
  const ids: string[] = [];
  const startOne = async (i: number): Promise<string> => {
    for (let attempt = 0; attempt < 200; attempt++) {
      try {
        const res = await dev.fetch(`/api/workflows/${WORKFLOW}/executions`, {
          method: "POST",
          headers: { "content-type": "application/json", "idempotency-key": `chaos-${dev.pid}-${i}` },
          body: JSON.stringify({ input: {} }),
        });
        const body = await res.json().catch(() => ({}));
        if (res.status === 202 || res.status === 200) return body.exec_id as string;
      } catch {
        // The API is up throughout; a refused connection is not expected but retried like a 503.
      }
      await sleep(250);
    }
    throw new Error(`execution ${i} could not be started`);
  };
  const starts = Array.from(
    { length: EXECUTIONS },
    (_, i) => sleep(i * START_GAP_MS).then(() => startOne(i)),
  );

  // The kills: the first while the starts are still coming in, each later one ~GAP_MS after dev says the
  // server is back.
  await sleep(FIRST_KILL_MS);
  for (let k = 1; k <= KILLS; k++) {
    const [nats] = await childrenNamed(dev.pid, "nats-server");
    if (!nats) throw new Error(`no managed nats-server under dev ${dev.pid}:\n${dev.lines.join("\n")}`);
    Deno.kill(nats, "SIGKILL");
    await gone(nats);
    say(`kill ${k}: nats-server ${nats} killed`);
    for (let i = 0; i < 300; i++) {
      if (dev.lines.filter((l) => /The managed nats-server is back/.test(l)).length >= k) break;
      await sleep(100);
    }
    say(`kill ${k}: dev says it is back`);
    if (k < KILLS) await sleep(GAP_MS);
  }
  ids.push(...await Promise.all(starts));
  // One more started after the last kill: if the executor's consumer stopped delivering, this one never runs
  // either (it tells a lost command from a consumer that is gone).
  await sleep(2_000);
  const probe = await startOne(EXECUTIONS);
  ids.push(probe);
  say(`${ids.length} executions started (the last, ${probe}, after the kills)`);

  // Every execution must end.
  const status = new Map<string, string>();
  const deadline = Date.now() + END_WAIT_MS;
  while (Date.now() < deadline) {
    for (const id of ids) {
      if (ENDED.has(status.get(id) ?? "")) continue;
      const res = await dev.fetch(`/api/executions/${id}`).catch(() => undefined);
      if (res?.ok) status.set(id, (await res.json()).status);
      else await res?.body?.cancel();
    }
    if (ids.every((id) => ENDED.has(status.get(id) ?? ""))) break;
    await sleep(1_000);
  }
  const counts: Record<string, number> = {};
  for (const id of ids) counts[status.get(id) ?? "unknown"] = (counts[status.get(id) ?? "unknown"] ?? 0) + 1;
  say(
    `after ${Math.round((END_WAIT_MS - Math.max(0, deadline - Date.now())) / 1000)} s: ${
      JSON.stringify(counts)
    }`,
  );
  for (const id of ids.filter((id) => !ENDED.has(status.get(id) ?? ""))) {
    stuck++;
    const res = await dev.fetch(`/api/executions/${id}/events`);
    const events = res.ok ? (await res.json()).events as Record<string, unknown>[] : [];
    say(`STUCK ${id} (${status.get(id)}), ${events.length} events, last 4:`);
    for (const e of events.slice(-4)) console.log(`    ${JSON.stringify(e).slice(0, 400)}`);
    const mentions = dev.lines.filter((l) => l.includes(id) || l.includes(id.slice(-8)));
    for (const l of mentions.slice(-12)) console.log(`    log: ${l.slice(0, 400)}`);
  }
  if (stuck > 0 || args.keep) {
    await Deno.writeTextFile(join(dev.dir, "dev.log"), dev.lines.join("\n") + "\n");
    say(`dev log: ${join(dev.dir, "dev.log")}`);
  }
} finally {
  await dev.stop();
  if (!args.keep && stuck === 0) await Deno.remove(dev.dir, { recursive: true }).catch(() => {});
}
say(stuck === 0 ? "every execution ended" : `${stuck} executions stuck`);
Deno.exit(stuck === 0 ? 0 : 1);
