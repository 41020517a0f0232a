/**
 * Whether an engine process is still there, asked of that engine itself. Each engine answers a core NATS
 * request on its own subject while its connection lives. "No responders" is the server's definite answer
 * that no connection subscribes to that subject: the engine died (a kill -9 closes its socket at once) or
 * lost NATS. Three time-outs in a row (an engine whose event loop is starved) or any other error count as
 * present: only a definite answer, given twice `RECHECK_MS` apart (an engine that was on a node that died
 * reconnects to another within that time), lets another engine take its leases before they expire (see
 * Leases).
 */
import type { NatsConnection, Subscription } from "@nats-io/transport-node";
import { errors } from "@nats-io/transport-node";
import { getLogger } from "../pkg/logger/mod.ts";

const log = getLogger(["engine", "presence"]);

/** The engine-to-engine subject prefix; engines may publish and subscribe `compozy.>`. */
const PRESENCE_PREFIX = "compozy.engine.presence";
/** How long a present engine has to answer a question; beyond ASK_TRIES of them, it counts as present but busy. */
const ASK_TIMEOUT_MS = 1_000;
const ASK_TRIES = 3;
/** The second "no responders" must come at least this long after the first. */
const RECHECK_MS = 1_000;

/**
 * The subject engine `instanceId` answers on: one token, each byte other than [A-Za-z0-9_-] written `~hh`, so
 * that two ids never share a subject (an id may hold dots or spaces).
 */
export function presenceSubject(instanceId: string): string {
  const token = [...new TextEncoder().encode(instanceId)].map((b) => {
    const c = String.fromCharCode(b);
    return /[A-Za-z0-9_-]/.test(c) ? c : `~${b.toString(16).padStart(2, "0")}`;
  }).join("");
  return `${PRESENCE_PREFIX}.${token}`;
}

export interface Presence {
  /** True only when engine `instanceId` is known to be gone (its subject had no responders twice). */
  isGone(instanceId: string): Promise<boolean>;
  /** True unless engine `instanceId` did not answer at once (one question; a time-out counts as present). */
  isPresent(instanceId: string): Promise<boolean>;
}

/** How long (from its question) a verdict of "gone" is reused: a dead engine's executions come back together. */
const GONE_REUSE_MS = 3_000;

export class EnginePresence implements Presence {
  /** One inquiry per engine at a time, and its "gone" verdict for a moment after (instance → when asked). */
  private readonly inquiries = new Map<string, { at: number; gone: Promise<boolean> }>();

  constructor(private readonly nc: NatsConnection) {}

  /** Answers for `instanceId` until the returned subscription is unsubscribed (or the connection closes). */
  answer(instanceId: string): Subscription {
    return this.nc.subscribe(presenceSubject(instanceId), {
      callback: (_err, msg) => {
        msg.respond();
      },
    });
  }

  isGone(instanceId: string): Promise<boolean> {
    const known = this.inquiries.get(instanceId);
    if (known && Date.now() - known.at < GONE_REUSE_MS) return known.gone;
    const gone = this.inquire(instanceId);
    const inquiry = { at: Date.now(), gone };
    this.inquiries.set(instanceId, inquiry);
    // Only "gone" is reused once settled: a present engine is asked again next time.
    gone.then((verdict) => {
      if (!verdict && this.inquiries.get(instanceId) === inquiry) this.inquiries.delete(instanceId);
    });
    return gone;
  }

  async isPresent(instanceId: string): Promise<boolean> {
    return !(await this.unanswered(instanceId));
  }

  private async inquire(instanceId: string): Promise<boolean> {
    if (!(await this.unanswered(instanceId))) return false;
    await new Promise((resolve) => setTimeout(resolve, RECHECK_MS));
    const gone = await this.unanswered(instanceId);
    if (gone) {
      log.info("Engine {instance} is gone (no responders twice, {ms} ms apart)", {
        instance: instanceId,
        ms: RECHECK_MS,
      });
    }
    return gone;
  }

  /**
   * True on "no responders". A question that times out is asked again, up to ASK_TRIES times: on a cluster, one
   * sent as the engine's connection closes, from a client of another node, is routed to the engine's node,
   * which drops it (only the asker's node answers "no responders"), and counted as present it left the
   * engine's leases to their TTL. Only an engine that let every question time out is busy (present).
   */
  private async unanswered(instanceId: string): Promise<boolean> {
    for (let tries = 1;; tries++) {
      try {
        await this.nc.request(presenceSubject(instanceId), undefined, { timeout: ASK_TIMEOUT_MS });
        return false;
      } catch (e) {
        if (e instanceof errors.NoRespondersError) return true;
        if (e instanceof errors.RequestError && e.isNoResponders()) return true;
        if (tries < ASK_TRIES && e instanceof errors.TimeoutError) continue;
        log.debug("engine {instance} did not answer ({tries} questions), counted as present: {error}", {
          instance: instanceId,
          tries,
          error: String(e),
        });
        return false;
      }
    }
  }
}
