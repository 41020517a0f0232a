/**
 * A wire tap for the cost model: one extra connection subscribed to every subject but the core requests whose
 * "no responders" is their meaning (presence, call holders, health, metrics: _tapped_subjects.ts), classifying
 * each message nats-server routes. It doubles the server's fan-out while it listens, so CPU is measured in a
 * run without it. Classes:
 * - `js acked` / `js not acked`: a publish captured by a stream (an event, a command, a log), with or
 *   without a reply subject for the stream's acknowledgement;
 * - `kv writes`: a publish on `$KV.<bucket>.<key>`;
 * - `deliveries`: a message a consumer delivers (its reply is a `$JS.ACK.` subject), `acks`: a message on
 *   one of those;
 * - `js api`: a request to the JetStream API (pulls, message gets, infos);
 * - `core`: everything else tapped (tool requests and replies, publish acknowledgements); not the call holder
 *   questions (one per running call per second), which the tap leaves out.
 */
import type { NatsConnection, Subscription } from "@nats-io/transport-node";
import { connectNats, DEFAULT_STREAMS } from "../pkg/nats/mod.ts";
import { subscribeTapped } from "./_tapped_subjects.ts";

export type WireCounts = Record<
  "js acked" | "js not acked" | "kv writes" | "deliveries" | "acks" | "js api" | "core",
  number
>;

function subjectMatcher(pattern: string): RegExp {
  const body = pattern.split(".").map((t) =>
    t === "*" ? "[^.]+" : t === ">" ? ".+" : t.replace(/[-]/g, "\\-")
  )
    .join("\\.");
  return new RegExp(`^${body}$`);
}

const STREAM_SUBJECTS = DEFAULT_STREAMS.flatMap((s) => s.subjects).map(subjectMatcher);

export class WireTap {
  private counts: WireCounts = zero();
  private constructor(private readonly nc: NatsConnection, private readonly subs: Subscription[]) {}

  static async start(url: string): Promise<WireTap> {
    const nc = await connectNats(url, { name: "bench-wire-tap" });
    let tap: WireTap | undefined = undefined;
    const subs = subscribeTapped(nc, (msg) => tap?.classify(msg.subject, msg.reply));
    tap = new WireTap(nc, subs);
    await nc.flush();
    return tap;
  }

  /** The counts since the last call, after the tap has seen everything sent before it. */
  async take(): Promise<WireCounts> {
    await this.nc.flush();
    const counts = this.counts;
    this.counts = zero();
    return counts;
  }

  async stop(): Promise<void> {
    for (const sub of this.subs) sub.unsubscribe();
    await this.nc.close();
  }

  private classify(subject: string, reply?: string): void {
    const c = this.counts;
    if (subject.startsWith("$JS.ACK.")) c.acks++;
    else if (reply?.startsWith("$JS.ACK.")) c.deliveries++;
    else if (subject.startsWith("$KV.")) c["kv writes"]++;
    else if (subject.startsWith("$JS.API.")) c["js api"]++;
    else if (STREAM_SUBJECTS.some((re) => re.test(subject))) c[reply ? "js acked" : "js not acked"]++;
    else c.core++;
  }
}

function zero(): WireCounts {
  return { "js acked": 0, "js not acked": 0, "kv writes": 0, deliveries: 0, acks: 0, "js api": 0, core: 0 };
}
