/**
 * The timeline of a W1 workflow (20 sequential no-op tool steps, the peer harness's `w20`) as a user runs it:
 * `POST /api/workflows/w20/executions?wait=60s` on `compozy dev`, against a nats-server of our own with a tap
 * that stamps each message as it arrives (every subject but the core requests whose "no responders" is their
 * meaning: presence, call holders, health; _tapped_subjects.ts). Every message of the run is classified (the trigger, the
 * start, the execute command, leases, each step's events, tool calls, state writes, reads, acks) and the gaps
 * between stages are summed over the measured runs, so a wait that is not a floor shows as a stage.
 *
 * Run: `deno task bench timeline` (TIMELINE_RUNS=20 measured runs after 5 of warm-up; TIMELINE_DUMP=1 prints
 * every message of the last run with its time since the HTTP request).
 *
 * @module
 */
import { join, resolve } from "node:path";
import { connectNats } from "../pkg/nats/mod.ts";
import { startDev } from "../test/e2e/support/dev_server.ts";
import { percentile, roundMs } from "./_stats.ts";
import { subscribeTapped } from "./_tapped_subjects.ts";

const REPO = resolve(import.meta.dirname!, "..");
// TIMELINE_PROJECT: the peers' project from a worktree under /work/wt, where REPO/../shared is not the shared folder.
const PROJECT = Deno.env.get("TIMELINE_PROJECT") ?? join(REPO, "../shared/peers/compozy/project");
const RUNS = Number(Deno.env.get("TIMELINE_RUNS") ?? 20);
const WARMUP = 5;

interface Tapped {
  t: number;
  subject: string;
  reply: string;
  size: number;
}

/** A message's kind: the stage it belongs to. */
export function kindOf(subject: string, reply: string): string {
  if (subject.startsWith("$JS.ACK.")) {
    const tokens = subject.split(".");
    // $JS.ACK.<domain?>.<stream>.<consumer>....
    const consumer = tokens.length >= 11 ? tokens[4] : tokens[3];
    return `ack ${consumer}`;
  }
  if (reply.startsWith("$JS.ACK.")) {
    const tokens = reply.split(".");
    const consumer = tokens.length >= 11 ? tokens[4] : tokens[3];
    return `delivery ${consumer}: ${shortSubject(subject)}`;
  }
  if (subject.startsWith("$KV.")) return `kv put ${subject.split(".")[1]}`;
  if (subject.startsWith("$JS.API.DIRECT.GET.")) return `direct get ${subject.split(".")[4]}`;
  if (subject.startsWith("$JS.API.CONSUMER.MSG.NEXT.")) {
    return `pull ${subject.split(".").slice(5).join(".")}`;
  }
  if (subject.startsWith("$JS.API.")) return `js api ${subject.split(".").slice(2, 5).join(".")}`;
  if (subject.startsWith("_INBOX")) return "reply";
  if (subject.startsWith("compozy.")) return `${reply ? "req/pub+ack" : "pub"} ${shortSubject(subject)}`;
  return `other ${subject}`;
}

/** compozy.<corr>.<domain>.<kind>.<id>.<verb> without the ids. */
function shortSubject(subject: string): string {
  const t = subject.split(".");
  if (t[0] !== "compozy") return subject;
  return [t[2], t[3], t[5]].filter(Boolean).join(".");
}

function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

export async function benchTimeline(): Promise<Array<Record<string, string | number>>> {
  const store = await Deno.makeTempDir({ prefix: "timeline-nats-" });
  const port = freePort();
  const nats = new Deno.Command("nats-server", {
    args: ["-js", "-a", "127.0.0.1", "-p", String(port), "-sd", store],
    stdout: "null",
    stderr: "null",
  }).spawn();
  const url = `nats://127.0.0.1:${port}`;
  try {
    await waitForPort(port);
    const dev = await startDev({ fixture: PROJECT, env: { NATS_URL: url } });
    try {
      return await measure(url, dev.url);
    } finally {
      await dev.stop();
      await Deno.remove(dev.dir, { recursive: true });
    }
  } finally {
    nats.kill("SIGTERM");
    await nats.status;
    await Deno.remove(store, { recursive: true });
  }
}

async function measure(natsUrl: string, api: string): Promise<Array<Record<string, string | number>>> {
  const tapped: Tapped[] = [];
  const nc = await connectNats(natsUrl, { name: "bench-timeline-tap" });
  subscribeTapped(nc, (msg) => {
    tapped.push({
      t: performance.now(),
      subject: msg.subject,
      reply: msg.reply ?? "",
      size: msg.data.length,
    });
  });
  await nc.flush();
  const run = async () => {
    const t0 = performance.now();
    const res = await fetch(`${api}/api/workflows/w20/executions?wait=60s`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ input: {} }),
    });
    const body = await res.json();
    const t1 = performance.now();
    if (body.status !== "SUCCESS") throw new Error(`run ended ${JSON.stringify(body).slice(0, 300)}`);
    return { t0, t1, execId: body.exec_id as string };
  };
  for (let i = 0; i < WARMUP; i++) await run();
  const walls: number[] = [];
  const stages = new Map<string, number[]>();
  const counts = new Map<string, number>();
  let last: Tapped[] = [];
  let lastT0 = 0;
  for (let i = 0; i < RUNS; i++) {
    await nc.flush();
    tapped.length = 0;
    const { t0, t1 } = await run();
    await nc.flush();
    // Other messages (heartbeats, leases of nothing) may land in the window too: they are counted as such.
    const msgs = tapped.filter((m) => m.t >= t0 && m.t <= t1 + 1);
    walls.push(t1 - t0);
    for (const m of msgs) {
      const k = kindOf(m.subject, m.reply);
      counts.set(k, (counts.get(k) ?? 0) + 1);
    }
    for (const [stage, ms] of Object.entries(stagesOf(msgs, t0, t1))) {
      if (!stages.has(stage)) stages.set(stage, []);
      stages.get(stage)!.push(ms);
    }
    last = msgs;
    lastT0 = t0;
  }
  await nc.close();
  if (Deno.env.get("TIMELINE_DUMP")) {
    let prev = lastT0;
    for (const m of last) {
      console.log(
        `${(m.t - lastT0).toFixed(3).padStart(8)} +${(m.t - prev).toFixed(3).padStart(7)}  ${
          kindOf(m.subject, m.reply)
        }  ${m.size}B`,
      );
      prev = m.t;
    }
  }
  const rows: Array<Record<string, string | number>> = [{
    stage: "workflow wall (HTTP request → answer)",
    "p50 ms": roundMs(percentile(walls, 50)),
    "min ms": roundMs(Math.min(...walls)),
    "per run": 1,
  }];
  for (const [stage, values] of stages) {
    rows.push({
      stage,
      "p50 ms": roundMs(percentile(values, 50)),
      "min ms": roundMs(Math.min(...values)),
      "per run": "",
    });
  }
  for (const [kind, n] of [...counts].sort((a, b) => b[1] - a[1])) {
    rows.push({ stage: `count: ${kind}`, "p50 ms": "", "min ms": "", "per run": +(n / RUNS).toFixed(2) });
  }
  return rows;
}

/**
 * Stages of one run from its messages: the start (trigger, start event, execute command, its delivery), each
 * step from its dispatch to the next one's (split at the tool request, the runtime's tool events, its reply,
 * the step's outcome and its stream ack; averaged per step), and the end (the end document, the answer).
 */
function stagesOf(msgs: Tapped[], t0: number, t1: number): Record<string, number> {
  const find = (pred: (m: Tapped) => boolean, from = 0) => {
    for (let i = from; i < msgs.length; i++) if (pred(msgs[i])) return i;
    return -1;
  };
  const out: Record<string, number> = {};
  const trig = find((m) => m.subject.endsWith(".trigger") && m.subject.includes(".workflow.cmds."));
  if (trig < 0) return out;
  out["HTTP request → trigger sent"] = msgs[trig].t - t0;
  const triggerInbox = msgs[trig].reply;
  const trigReply = find((m) => m.subject === triggerInbox, trig);
  const started = find((m) => m.subject.includes(".workflow.evts.") && m.subject.endsWith(".started"), trig);
  const execute = find((m) => m.subject.includes(".workflow.cmds.") && m.subject.endsWith(".execute"), trig);
  if (started >= 0) out["trigger → start event published"] = msgs[started].t - msgs[trig].t;
  if (execute >= 0 && started >= 0) {
    out["start published → execute published"] = msgs[execute].t - msgs[started].t;
  }
  if (trigReply >= 0 && execute >= 0) {
    out["execute published → trigger reply"] = msgs[trigReply].t - msgs[execute].t;
  }
  const execDelivered = find(
    (m) => m.subject.endsWith(".execute") && m.reply.startsWith("$JS.ACK."),
    execute,
  );
  if (execDelivered >= 0) {
    out["execute published → delivered to an engine"] = msgs[execDelivered].t - msgs[execute].t;
  }
  const toolReqs: number[] = [];
  msgs.forEach((m, i) => {
    if (m.subject.includes(".tool.cmds.") && !m.reply.startsWith("$JS.ACK.")) toolReqs.push(i);
  });
  const dispatched: number[] = [];
  msgs.forEach((m, i) => {
    if (
      m.subject.includes(".task.evts.") && m.subject.endsWith(".dispatched") &&
      !m.reply.startsWith("$JS.ACK.")
    ) {
      dispatched.push(i);
    }
  });
  const succeeded: number[] = [];
  msgs.forEach((m, i) => {
    if (
      m.subject.includes(".task.evts.") && m.subject.endsWith(".success") && !m.reply.startsWith("$JS.ACK.")
    ) {
      succeeded.push(i);
    }
  });
  if (execDelivered >= 0 && dispatched.length) {
    out["execute delivered → first task dispatched (lease, driver)"] = msgs[dispatched[0]].t -
      msgs[execDelivered].t;
  }
  const add = (k: string, v: number) => out[k] = (out[k] ?? 0) + v / dispatched.length;
  const after = (i: number, pred: (m: Tapped) => boolean) => find(pred, i + 1);
  for (let s = 0; s < dispatched.length; s++) {
    const d = dispatched[s];
    const req = toolReqs.find((i) => i > d);
    const ok = succeeded.find((i) => i > d);
    if (req === undefined || ok === undefined) continue;
    const reqReply = find((m) => m.subject === msgs[req].reply, req);
    const toolStarted = after(
      req,
      (m) => m.subject.includes(".tool.evts.") && m.subject.endsWith(".started"),
    );
    const toolEnded = after(req, (m) => m.subject.includes(".tool.evts.") && m.subject.endsWith(".success"));
    add("step: task.dispatched → tool request", msgs[req].t - msgs[d].t);
    if (toolStarted >= 0 && toolEnded > toolStarted && reqReply > toolEnded) {
      add("step: tool request → tool.started (runtime)", msgs[toolStarted].t - msgs[req].t);
      add("step: tool.started → tool.success (sandbox call)", msgs[toolEnded].t - msgs[toolStarted].t);
      add("step: tool.success → tool reply (runtime)", msgs[reqReply].t - msgs[toolEnded].t);
    }
    if (reqReply >= 0) add("step: tool reply → task.success sent (engine)", msgs[ok].t - msgs[reqReply].t);
    const okAck = find((m) => m.subject === msgs[ok].reply, ok);
    if (okAck >= 0) add("step: task.success → its stream ack (awaited write)", msgs[okAck].t - msgs[ok].t);
    const next = dispatched[s + 1] ??
      find((m) => m.subject.includes(".workflow.evts.") && !m.reply.startsWith("$JS.ACK."), ok);
    if (next >= 0 && okAck >= 0) {
      add("step: stream ack → next dispatch (engine)", msgs[next].t - msgs[okAck].t);
    }
  }
  const wfEnd = find((m) =>
    m.subject.includes(".workflow.evts.") && m.subject.endsWith(".success") && !m.reply.startsWith("$JS.ACK.")
  );
  if (wfEnd >= 0) {
    const endDoc = msgs.findLastIndex((m) => m.subject.startsWith("$KV.compozy_workflow_executions."));
    if (endDoc > wfEnd) {
      out["end: workflow.success → end document written (state manager)"] = msgs[endDoc].t - msgs[wfEnd].t;
      out["end: end document → HTTP answer (API: task reads, JSON)"] = t1 - msgs[endDoc].t;
    }
  }
  return out;
}

async function waitForPort(port: number): Promise<void> {
  for (let i = 0; i < 100; i++) {
    try {
      (await Deno.connect({ hostname: "127.0.0.1", port })).close();
      return;
    } catch {
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  throw new Error(`nats-server did not listen on ${port}`);
}

if (import.meta.main) {
  const rows = await benchTimeline();
  console.table(rows);
}
