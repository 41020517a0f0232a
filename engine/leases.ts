/**
 * Execution leases: at most one engine drives an execution at a time. A lease is a KV entry naming its
 * holder; the holder refreshes it while the execution is active, and the bucket's TTL frees it when a holder
 * dies. An engine restarted with the same instance id takes its own leases back at once.
 *
 * Fencing: the KV entry of a lease lives at least `ttlMs` after the server stored its last write, and the
 * server stores a write after this process sent it. So from the send time of the last confirmed write, no
 * other engine can take the lease for `ttlMs`. The holder may record events for the execution only until
 * `writableUntil` (that time, less a margin that covers one publish attempt still in flight), and bounds
 * each publish by it: an engine that could not confirm its lease in time stops writing before anyone else
 * can start.
 *
 * Fail-over before the TTL: a lease whose holder is known to be gone (see EnginePresence: its process no
 * longer has a NATS connection) is taken at once by a compare-and-set on the entry's revision, so that the
 * executions of a dead engine resume after the redelivery of their command, not after the TTL. A holder that
 * is alive but lost NATS (so looked gone) stops writing when it sees the disconnection (`suspendAll`) and
 * writes again only once a renewal confirmed the revision it holds: after a take-over, that renewal finds
 * another engine's entry and gives the driver up.
 */
import type { JetStreamClient } from "@nats-io/jetstream";
import type { KV } from "@nats-io/kv";
import { headers } from "@nats-io/transport-node";
import { BUCKETS, PublishError } from "../pkg/nats/mod.ts";
import { getLogger } from "../pkg/logger/mod.ts";
import type { Presence } from "./engine_presence.ts";

const log = getLogger(["engine", "leases"]);

/**
 * What a refresh found: still `held`; `lost` to another engine (it wrote the entry since); `expired`
 * (not confirmed within its TTL, so it may be another engine's by now); or `unconfirmed` (NATS did not
 * answer; the lease is still writable and the next refresh tries again).
 */
export type LeaseStatus = "held" | "lost" | "expired" | "unconfirmed";

/** What a claim of a lease found: taken, another engine's, or left by another engine's parked driver. */
export type Claim = "acquired" | "held elsewhere" | "parked elsewhere";

/**
 * A write refused because the holding it was made for ended, though this engine holds the lease again: a driver
 * given up (or parked) whose write came back after its engine took the execution back. The message is NOT
 * stored: under the new holding's revision no fence would leave it out of the history.
 */
export class HoldingEndedError extends PublishError {
  override name = "HoldingEndedError";
  constructor(readonly execId: string, subject: string) {
    super(
      `Not recorded: the driver of execution ${execId} that wrote this was let go (given up or parked); ` +
        `a later activation drives the execution`,
      subject,
      0,
    );
  }
}

/** A write refused because this engine no longer holds the execution's lease: the message is NOT stored. */
export class LeaseExpiredError extends PublishError {
  override name = "LeaseExpiredError";
  constructor(readonly execId: string, subject: string) {
    super(
      `Not recorded: this engine's lease of execution ${execId} was not confirmed within its TTL ` +
        `(another engine may drive it now)`,
      subject,
      0,
    );
  }
}

interface Held {
  revision: number;
  /**
   * The revision at which this engine took the lease (renewals move `revision`, not this): every event it
   * records carries it, so that a later holder's take-over (a higher revision) fences them out.
   */
  takenAt: number;
  /** When the write that produced `revision` was sent (ms since the epoch). */
  confirmedAt: number;
  /** The connection dropped since that write: not writable until a renewal confirms `revision` again. */
  suspended?: boolean;
  /** Taken where the key had no message at all: no engine held the lease within its TTL (see takenAnew). */
  anew?: boolean;
  /** Taken back from this engine's own release marker, no one having written the lease since (see resumed). */
  resumed?: boolean;
  /**
   * This holding among all of this engine's (a new one at every claim, a resumed one too; renewals keep it):
   * the driver activated under it writes under it only (see assertWritable).
   */
  holding: number;
}

/** A holding this engine left parked: its release marker's revision, and the revision it was taken at. */
interface ParkedHolding {
  marker: number;
  takenAt: number;
}

export class Leases {
  private readonly held = new Map<string, Held>();
  private readonly refreshing = new Map<string, Promise<LeaseStatus>>();
  /** The holdings this engine parked lately (see resumed), oldest forgotten first. */
  private readonly parkedHere = new Map<string, ParkedHolding>();
  /** Holders found gone, with when they were asked about (ms since the epoch): see takeFromGone. */
  private readonly gone = new Map<string, number>();
  /** What a publish attempt may take (bus: at most 2 s) plus slack: writes stop this long before expiry. */
  private readonly marginMs: number;
  /** The last holding number given (see Held.holding). */
  private holdings = 0;

  /** The bucket's TTL; Infinity for a bucket without one (its leases never expire, nor stop being writable). */
  readonly ttlMs: number;

  constructor(
    private readonly kv: KV,
    readonly instanceId: string,
    ttlMs: number,
    /** Tells whether another holder is gone; without it, a lease passes on only when its TTL frees it. */
    private readonly presence?: Presence,
    /** Writes an entry only where its key has no message (see takenAnew); without it, no lease is taken anew. */
    private readonly js?: JetStreamClient,
  ) {
    this.ttlMs = ttlMs > 0 ? ttlMs : Infinity;
    this.marginMs = Math.min(3_000, this.ttlMs / 3);
  }

  /** True when this instance now holds the lease of `execId` (see claim). */
  async acquire(execId: string): Promise<boolean> {
    return (await this.claim(execId)) === "acquired";
  }

  /**
   * Takes the lease of `execId` if it is free, ours, left by a parked driver, or held by an engine that is
   * gone. A lease left by a parked driver (see release) is a hint, not a claim: with `yieldToParked`, it is
   * left to that engine while it is there ("parked elsewhere"), so that an execution's wake-up goes back to
   * where it ran (no replay, no move).
   */
  async claim(execId: string, options: { yieldToParked?: boolean } = {}): Promise<Claim> {
    try {
      return await this.claimOnce(execId, options);
    } finally {
      // A parked holding is taken back once at most: whatever this claim found, the marker is past.
      this.parkedHere.delete(execId);
    }
  }

  private async claimOnce(execId: string, options: { yieldToParked?: boolean }): Promise<Claim> {
    const sentAt = Date.now();
    try {
      const anew = this.js !== undefined;
      const revision = anew ? await this.createAnew(execId) : await this.kv.create(execId, this.value());
      this.confirm(execId, revision, sentAt, anew);
      return "acquired";
    } catch (e) {
      // Someone holds it (or held it): whose it is decides.
      log.debug("lease {execId} not created: {error}", { execId, error: String(e) });
    }
    const entry = await this.kv.get(execId);
    // A release marker is written over at its revision (KV.create would first try, and fail, as we did).
    if (!entry || entry.operation !== "PUT") return await this.compareAndSet(execId, entry?.revision);
    const { holder, parked } = parseLease(entry.string());
    if (holder === this.instanceId) {
      const again = Date.now();
      const revision = await this.kv.update(execId, this.value(), entry.revision);
      const left = this.parkedHere.get(execId);
      if (parked && left?.marker === entry.revision) {
        this.held.set(execId, {
          revision,
          takenAt: left.takenAt,
          confirmedAt: again,
          resumed: true,
          holding: ++this.holdings,
        });
      } else {
        this.confirm(execId, revision, again);
      }
      return "acquired";
    }
    if (parked) {
      if (options.yieldToParked && await this.presence?.isPresent(holder)) return "parked elsewhere";
      return await this.compareAndSet(execId, entry.revision);
    }
    return await this.takeFromGone(execId, holder, entry.revision, entry.created.getTime());
  }

  /**
   * True when this engine holds the lease of `execId` and took it where its key had no message at all: no
   * entry, and no release marker. An entry, its renewals and its release marker each live the bucket's TTL,
   * so no other engine held the lease within the TTL before the claim (an execution accepted here less than
   * that ago was driven by no one else, even by an engine that gave its command back).
   */
  takenAnew(execId: string): boolean {
    return this.held.get(execId)?.anew === true;
  }

  /**
   * True when this engine holds the lease of `execId` as the continuation of a holding it parked: the claim
   * wrote over its own release marker at the revision that marker was stored at, so no engine wrote the lease
   * between them (a take-over writes the lease first), and no other engine drove the execution or recorded
   * anything since (a late write of an earlier holder is already fenced by this holding's revision, or its
   * take-over). Its events carry the parked holding's revision, and there is no take-over to append: the history
   * read after the claim is complete, and a later holder still fences them with its higher revision. A signal
   * that a parked execution refuses then writes nothing (issue 9's rest: each appended a take-over).
   */
  resumed(execId: string): boolean {
    return this.held.get(execId)?.resumed === true;
  }

  /**
   * Until when (ms since the epoch) this engine may record events of `execId`; 0 when it holds no lease or
   * its lease is suspended.
   */
  writableUntil(execId: string): number {
    const held = this.held.get(execId);
    return held && !held.suspended ? this.lastWritableAt(held) : 0;
  }

  /** The connection to NATS dropped: every lease stops being writable until a renewal confirms it. */
  suspendAll(): void {
    for (const held of this.held.values()) held.suspended = true;
  }

  /** The holding of `execId` this engine has now (see Held.holding); undefined when it holds none. */
  holdingOf(execId: string): number | undefined {
    return this.held.get(execId)?.holding;
  }

  /**
   * Throws LeaseExpiredError unless a write for `execId` may still be sent now; returns its deadline and the
   * lease revision the write carries (its fence: see lease_fence.ts). With `holding` (see holdingOf), a write
   * made for another holding than the current one throws HoldingEndedError: the current revision would be
   * its fence's, and a resumed holding keeps the parked one's revision, so no fence tells the two apart.
   */
  assertWritable(execId: string, subject: string, holding?: number): { deadline: number; revision: number } {
    const until = this.writableUntil(execId);
    if (Date.now() >= until) throw new LeaseExpiredError(execId, subject);
    const held = this.held.get(execId)!;
    if (holding !== undefined && held.holding !== holding) throw new HoldingEndedError(execId, subject);
    return { deadline: until, revision: held.takenAt };
  }

  /**
   * Extends the lease. An entry that moved on without us seeing it (our update landed but its reply was
   * lost) is taken back; another holder's entry, or none (see refreshOnce), means `lost`. Concurrent
   * refreshes of one lease share one attempt.
   */
  refresh(execId: string): Promise<LeaseStatus> {
    const pending = this.refreshing.get(execId);
    if (pending) return pending;
    const attempt = this.refreshOnce(execId).finally(() => this.refreshing.delete(execId));
    this.refreshing.set(execId, attempt);
    return attempt;
  }

  private async refreshOnce(execId: string): Promise<LeaseStatus> {
    const held = this.held.get(execId);
    if (!held) return "held";
    const sentAt = Date.now();
    try {
      this.renewed(execId, held, await this.kv.update(execId, this.value(), held.revision), sentAt);
      return "held";
    } catch (e) {
      if (!isConflict(e)) return this.unconfirmed(execId, e);
    }
    try {
      const entry = await this.kv.get(execId);
      // Only an entry still ours (our update landed, its reply was lost) is taken back. An entry that vanished
      // is lost: a release marker is another holder's (this engine never deletes a lease it holds), and a key
      // with no message at all may be one whose taker's entry expired too. Taken back, the lease would keep
      // its old revision, lower than that taker's take-over, so every later event of this driver would be
      // fenced out (ignored) while it ran on; given up, the command comes back and is replayed from the history.
      if (entry?.operation !== "PUT" || entry.string() !== this.instanceId) return this.drop(execId, "lost");
      if (Date.now() >= this.lastWritableAt(held)) return this.drop(execId, "expired");
      const again = Date.now();
      this.renewed(execId, held, await this.kv.update(execId, this.value(), entry.revision), again);
      log.info("lease {execId} renewed after a conflict (its entry was ours at a later revision)", {
        execId,
      });
      return "held";
    } catch (e) {
      // Another engine updated it between our read and write: it is theirs.
      if (isConflict(e)) return this.drop(execId, "lost");
      return this.unconfirmed(execId, e);
    }
  }

  /**
   * Frees the lease, unless another engine holds it by now. With `parked`, the entry stays as a hint of
   * where the execution ran (until the bucket's TTL removes it): any engine may take it, and one that asks
   * to (see acquire) leaves it to this engine while it is there.
   */
  async release(execId: string, options: { parked?: boolean } = {}): Promise<void> {
    // A renewal under way (its interval stops with the driver, not its last request) moves the revision the
    // release must write at: released before its reply, the holding came back with it and the release's write
    // was refused (breaker2 D7).
    await this.refreshing.get(execId);
    const held = this.held.get(execId);
    this.held.delete(execId);
    if (held === undefined) return;
    // Refused when another engine holds it by now; a lease left behind expires with its TTL.
    try {
      if (options.parked) {
        const marker = `${this.instanceId}${PARKED_SUFFIX}`;
        const revision = await this.kv.update(execId, new TextEncoder().encode(marker), held.revision);
        this.rememberParked(execId, { marker: revision, takenAt: held.takenAt });
      } else {
        await this.kv.delete(execId, { previousSeq: held.revision });
      }
    } catch (e) {
      log.debug("lease {execId} not released: {error}", { execId, error: String(e) });
    }
  }

  /** Moved to the end: a Map keeps a key's first insertion order, and the oldest is forgotten first. */
  private rememberParked(execId: string, holding: ParkedHolding): void {
    this.parkedHere.delete(execId);
    this.parkedHere.set(execId, holding);
    if (this.parkedHere.size > PARKED_REMEMBERED) {
      this.parkedHere.delete(this.parkedHere.keys().next().value!);
    }
  }

  /**
   * Writes this engine's entry only where the key has no message (`Nats-Expected-Last-Subject-Sequence: 0`;
   * KV.create also writes over a release marker, and KV.put sends no header for 0).
   */
  private async createAnew(execId: string): Promise<number> {
    const h = headers();
    h.set("Nats-Expected-Last-Subject-Sequence", "0");
    return (await this.js!.publish(`$KV.${BUCKETS.leases}.${execId}`, this.value(), { headers: h })).seq;
  }

  /**
   * Takes the lease of a holder that is gone (never of one that may be alive). A holder found gone is not asked
   * about again for an entry it wrote before that verdict: a dead engine's commands come back over several
   * seconds at load (each after its own ack wait, some after a hand-back's delay), and each new question
   * costs a second (EnginePresence's recheck). An entry written after the verdict (an engine restarted with the
   * same id, taking its leases back) is asked about again.
   */
  private async takeFromGone(
    execId: string,
    holder: string,
    revision: number,
    writtenAt: number,
  ): Promise<Claim> {
    const goneAt = this.gone.get(holder);
    if (goneAt === undefined || writtenAt >= goneAt - CLOCK_MARGIN_MS) {
      if (!this.presence) return "held elsewhere";
      const asked = Date.now();
      if (!(await this.presence.isGone(holder))) return "held elsewhere";
      // Moved to the end: a Map keeps a key's first insertion order, and the oldest verdict is evicted first.
      this.gone.delete(holder);
      this.gone.set(holder, asked);
      if (this.gone.size > GONE_REMEMBERED) this.gone.delete(this.gone.keys().next().value!);
    }
    // Refused when another engine took it first (or the holder came back and renewed it).
    const claim = await this.compareAndSet(execId, revision);
    if (claim === "acquired") {
      log.info("Took over the lease of execution {exec_id} from engine {holder}, which is gone", {
        exec_id: execId,
        holder,
      });
    }
    return claim;
  }

  /**
   * Writes this engine's entry where the lease was free (`revision` undefined), or at `revision` (a release
   * marker, or a lease no one drives); "held elsewhere" when another engine wrote first.
   */
  private async compareAndSet(execId: string, revision: number | undefined): Promise<Claim> {
    const sentAt = Date.now();
    try {
      const written = revision === undefined
        ? await this.kv.create(execId, this.value())
        : await this.kv.update(execId, this.value(), revision);
      this.confirm(execId, written, sentAt);
      return "acquired";
    } catch (e) {
      log.debug("lease {execId} taken meanwhile: {error}", { execId, error: String(e) });
      return "held elsewhere";
    }
  }

  /** The lease was taken at `revision`: a new holding, whose events carry that revision. */
  private confirm(execId: string, revision: number, sentAt: number, anew = false): void {
    this.held.set(execId, {
      revision,
      takenAt: revision,
      confirmedAt: sentAt,
      anew,
      holding: ++this.holdings,
    });
  }

  /** A renewal of `held` stored `revision`: the holding goes on, its events keep their revision. */
  private renewed(execId: string, held: Held, revision: number, sentAt: number): void {
    // Only the holding that asked: one released or dropped meanwhile stays so.
    if (this.held.get(execId) !== held) return;
    const { takenAt, anew, resumed, holding } = held;
    this.held.set(execId, { revision, takenAt, confirmedAt: sentAt, anew, resumed, holding });
  }

  /** The end of the time a lease is ours for sure, suspended or not: its TTL from its last write, less the margin. */
  private lastWritableAt(held: Held): number {
    return held.confirmedAt + this.ttlMs - this.marginMs;
  }

  private unconfirmed(execId: string, error: unknown): LeaseStatus {
    const held = this.held.get(execId);
    if (held && Date.now() < this.lastWritableAt(held)) {
      log.warn("lease {execId} not renewed, retried on the next beat: {error}", {
        execId,
        error: String(error),
      });
      return "unconfirmed";
    }
    return this.drop(execId, "expired");
  }

  private drop(execId: string, status: "lost" | "expired"): LeaseStatus {
    this.held.delete(execId);
    return status;
  }

  private value(): Uint8Array {
    return new TextEncoder().encode(this.instanceId);
  }
}

/**
 * An entry's time is the server's, a verdict's this process's: an entry is known older than a verdict only
 * by this much (clocks of one data centre; a wrong guess costs a move, which the fence keeps safe).
 */
const CLOCK_MARGIN_MS = 250;
/** Gone holders remembered at most (oldest forgotten first). */
const GONE_REMEMBERED = 1_000;
/** Parked holdings remembered at most (oldest forgotten first: its execution's next claim appends a take-over). */
const PARKED_REMEMBERED = 10_000;

/** Appended to the holder's id in a lease whose driver parked: no one drives the execution now. */
const PARKED_SUFFIX = " (parked)";

function parseLease(value: string): { holder: string; parked: boolean } {
  return value.endsWith(PARKED_SUFFIX)
    ? { holder: value.slice(0, -PARKED_SUFFIX.length), parked: true }
    : { holder: value, parked: false };
}

/** A KV create/update refused because the entry is not at the expected revision. */
function isConflict(e: unknown): boolean {
  return /wrong last sequence/i.test(e instanceof Error ? e.message : String(e));
}
