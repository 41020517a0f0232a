/**
 * The fence of agent loops' turns: when two runners run one agent task at once (two runtimes each got the
 * task's command, or a command was re-sent while its first delivery still ran), each turn's model request and
 * each tool call is made by one of them only; the other waits for it and replays it.
 *
 * Each step of a task's loop (`reply.<turn>`, `tool.<turn>.<index>`) has a key `<task>.<step>` in the
 * JetStream KV bucket `compozy_agent_turns`, and every write to it carries the revision it read
 * (`Nats-Expected-Last-Subject-Sequence`, which nats-server 2.9 enforces), so of two runners writing at once
 * exactly one wins:
 * - the first to claim the key (`{ runner }`) makes the step; while it does, it renews its claim every third
 *   of the lease; it then writes what it made (`{ made }`) over its own last revision;
 * - a runner that finds a claim waits (a core subscription on the key's subject) for the next write; a claim
 *   not renewed for a whole lease belongs to a runner that died: the waiter claims it over that revision and
 *   makes the step itself (the one request in flight when a runner died may be made twice);
 * - a runner whose make fails releases its claim (so a waiter goes on at once rather than after the lease);
 *   a runner that lost its claim while making (its renewals stopped for a lease) drops what it made and takes
 *   what the new holder makes.
 * The lease is measured by each waiter's own clock from the last write it saw: clocks of different hosts are
 * never compared.
 *
 * A NATS outage (a server restart, a lost connection) is waited out: each read and write is tried again for
 * up to {@link OUTAGE_DEADLINE_MS}, as the bus retries a publish, so a runner keeps the step it made rather
 * than fail its attempt and have the step made again. A write whose answer was lost may have landed: when its
 * retry finds the key moved on, the key is read, and if it holds exactly what this runner wrote (its claim
 * names it; only the claim's holder writes what it made) the write is taken as done. An outage longer than the
 * lease lets a waiting runner of the same task take the claim over when NATS is back (its lease lapsed by its
 * clock): the step is then made twice, as when a runner dies.
 *
 * What a key holds is the step's record (a reply, a tool result): a runner that made a step and died before
 * it stored it in the history leaves it here, and whoever replays it stores it there (journal.ts sinks
 * publish with the turn's message id, so a reply stored twice is kept once).
 *
 * @module
 */

import type { NatsConnection } from "@nats-io/transport-node";
import { JetStreamApiCodes, JetStreamApiError } from "@nats-io/jetstream";
import { type KV, Kvm } from "@nats-io/kv";
import { BUCKETS, isTransientNatsError } from "../nats/mod.ts";
import { getLogger } from "../logger/mod.ts";
import { AgentFailure, errorMessage } from "./agent/agent_failure.ts";
import type { TurnFence } from "./agent/turn_journal.ts";

const log = getLogger(["runtime", "agent", "fence"]);

/** A claim not renewed for this long belongs to a runner that is gone. */
export const DEFAULT_TURN_LEASE_MS = 15_000;

/** How long a read or write of the fence is tried again through a NATS outage (the bus's publish deadline). */
export const OUTAGE_DEADLINE_MS = 30_000;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

type FenceState = { runner: string } | { made: unknown };

/** The fences of this runtime's loops; opens the bucket at first use. */
export class AgentTurnFences {
  #kv?: Promise<KV>;

  constructor(
    private readonly nc: NatsConnection,
    private readonly leaseMs: number = DEFAULT_TURN_LEASE_MS,
  ) {}

  /** The fence of one run of task `taskExecId`'s loop; `signal` ends its waits. */
  forTask(taskExecId: string, signal?: AbortSignal): TurnFence {
    return new KvTurnFence({
      bucket: () => this.#kv ??= new Kvm(this.nc).open(BUCKETS.agentTurns),
      nc: this.nc,
      task: taskKey(taskExecId),
      runner: crypto.randomUUID(),
      leaseMs: this.leaseMs,
      signal,
    });
  }
}

interface FenceOptions {
  bucket: () => Promise<KV>;
  nc: NatsConnection;
  task: string;
  runner: string;
  leaseMs: number;
  signal?: AbortSignal;
}

class KvTurnFence implements TurnFence {
  constructor(private readonly options: FenceOptions) {}

  async once<T>(step: string, make: () => Promise<T>): Promise<T> {
    const key = `${this.options.task}.${step}`;
    let seen = await this.read(key);
    for (;;) {
      this.options.signal?.throwIfAborted();
      if (seen.state && "made" in seen.state) return seen.state.made as T;
      if (seen.state && !(await this.heldUntilChange(key, seen.revision))) {
        seen = await this.read(key);
        continue;
      }
      // Free, released, or held by a runner that stopped renewing: claim it over what was read.
      const claimed = await this.write(key, { runner: this.options.runner }, seen.revision);
      if (claimed !== undefined) {
        const made = await this.hold(key, claimed, make);
        if (made.kept) return made.value;
      }
      seen = await this.read(key);
    }
  }

  /**
   * Makes the step while renewing the claim at `revision`, then writes what was made over the last renewal.
   * `kept: false` when another runner took the claim meanwhile (what was made is dropped).
   */
  private async hold<T>(
    key: string,
    revision: number,
    make: () => Promise<T>,
  ): Promise<{ kept: true; value: T } | { kept: false }> {
    let current: number | undefined = revision;
    let renewal = Promise.resolve();
    const renew = setInterval(() => {
      renewal = renewal.then(async () => {
        if (current === undefined) return;
        try {
          current = await this.write(key, { runner: this.options.runner }, current);
        } catch (error) {
          // NATS away for a moment: the next renewal tries again; the lease covers two misses.
          log.warn("Agent turn {key}: renewing the claim failed: {error}", {
            key,
            error: errorMessage(error),
          });
        }
      });
    }, Math.max(1, Math.floor(this.options.leaseMs / 3)));
    const stopRenewing = async () => {
      clearInterval(renew);
      await renewal;
    };
    let value: T;
    try {
      value = await make();
    } catch (error) {
      await stopRenewing();
      if (current !== undefined) await this.release(key, current);
      throw error;
    }
    await stopRenewing();
    if (current === undefined) return { kept: false };
    const stored = await this.write(key, { made: value }, current);
    return stored === undefined ? { kept: false } : { kept: true, value };
  }

  /**
   * Waits while the claim read at `revision` stands: false when the key was written since (read it again),
   * true when nothing was written for a whole lease (its runner is gone).
   */
  private async heldUntilChange(key: string, revision: number): Promise<boolean> {
    const { nc, leaseMs, signal } = this.options;
    let wake!: (lapsed: boolean) => void;
    const woken = new Promise<boolean>((resolve) => wake = resolve);
    const subscription = nc.subscribe(`$KV.${BUCKETS.agentTurns}.${key}`, { callback: () => wake(false) });
    const lapse = setTimeout(() => wake(true), leaseMs);
    const onAbort = () => wake(false);
    signal?.addEventListener("abort", onAbort, { once: true });
    try {
      await nc.flush();
      // A write between the read and the subscription is not on the subscription: read once more.
      if ((await this.read(key)).revision !== revision) return false;
      return await woken;
    } finally {
      clearTimeout(lapse);
      signal?.removeEventListener("abort", onAbort);
      subscription.unsubscribe();
    }
  }

  /** The key's state and revision (0 when it was never written; a released key has a state of none). */
  private async read(key: string): Promise<{ state?: FenceState; revision: number }> {
    const entry = await this.throughOutage(
      key,
      "reading",
      async () => await (await this.options.bucket()).get(key),
    );
    if (!entry) return { revision: 0 };
    if (entry.operation !== "PUT") return { revision: entry.revision };
    try {
      return { state: JSON.parse(decoder.decode(entry.value)) as FenceState, revision: entry.revision };
    } catch (error) {
      throw unavailable(key, "parsing", error);
    }
  }

  /** The new revision, or undefined when the key is no longer at `revision` (another runner wrote first). */
  private async write(key: string, state: FenceState, revision: number): Promise<number | undefined> {
    const bytes = encoder.encode(JSON.stringify(state));
    let tries = 0;
    const written = await this.throughOutage(key, "writing", async () => {
      tries++;
      try {
        return await (await this.options.bucket()).put(key, bytes, { previousSeq: revision });
      } catch (error) {
        if (isWrongRevision(error)) return undefined;
        throw error;
      }
    });
    if (written !== undefined || tries === 1) return written;
    // An earlier try's answer was lost: it may have landed, and then the key holds exactly these bytes.
    const entry = await this.throughOutage(
      key,
      "reading",
      async () => await (await this.options.bucket()).get(key),
    );
    return entry?.operation === "PUT" && sameBytes(entry.value, bytes) ? entry.revision : undefined;
  }

  /**
   * `operation`, tried again while NATS is away (a transient error) for up to OUTAGE_DEADLINE_MS or until the
   * fence's signal aborts; any other error, or an outage longer than that, is `agent_turn_unrecorded`.
   */
  private async throughOutage<T>(key: string, what: string, operation: () => Promise<T>): Promise<T> {
    const deadline = Date.now() + OUTAGE_DEADLINE_MS;
    let delay = 50;
    for (let attempt = 1;; attempt++) {
      try {
        return await operation();
      } catch (error) {
        if (!isTransientNatsError(error) || Date.now() + delay >= deadline || this.options.signal?.aborted) {
          throw unavailable(key, `${what} (${attempt} attempts)`, error);
        }
        if (attempt === 1) {
          log.warn("Agent turn {key}: {what} failed, trying again while NATS is away: {error}", {
            key,
            what,
            error: errorMessage(error),
          });
        }
        await new Promise((resolve) => setTimeout(resolve, delay));
        delay = Math.min(delay * 2, 1_000);
      }
    }
  }

  /** Lets a waiting runner make the step now; if this fails, it does so once the lease lapses. */
  private async release(key: string, revision: number): Promise<void> {
    try {
      await (await this.options.bucket()).delete(key, { previousSeq: revision });
    } catch (error) {
      log.warn(
        "Agent turn {key}: releasing the claim failed, a waiting runner goes on after the lease: {error}",
        {
          key,
          error: errorMessage(error),
        },
      );
    }
  }
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((byte, i) => byte === b[i]);
}

function isWrongRevision(error: unknown): boolean {
  return error instanceof JetStreamApiError &&
    (error.code === JetStreamApiCodes.StreamWrongLastSequence ||
      error.code === JetStreamApiCodes.StreamWrongLastSequenceUnknown);
}

function unavailable(key: string, what: string, cause: unknown): AgentFailure {
  return new AgentFailure(
    "agent_turn_unrecorded",
    `agent turn fence ${key}: ${what} failed: ${errorMessage(cause)}`,
    { retryable: true, details: { key }, cause },
  );
}

/** Task execution ids are UUIDs, valid in a key as they are; anything else is hex-encoded. */
function taskKey(taskExecId: string): string {
  if (/^[A-Za-z0-9_-]+$/.test(taskExecId)) return taskExecId;
  return [...encoder.encode(taskExecId)].map((b) => b.toString(16).padStart(2, "0")).join("");
}
