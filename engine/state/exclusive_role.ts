/**
 * A role one engine plays at a time, held on a lease (leases.ts, key `key` in the leases bucket): the holder
 * runs the role's work, the others ask again every `retryMs` and take the lease when it is free or its
 * holder is gone (EnginePresence: at once after a kill, not after the TTL). A holder renews its lease every
 * fifth of the TTL, as a driver does; a lease lost or expired (an event loop starved past the TTL) stops the
 * work here, and another engine takes the role. For a moment two engines may then do the work, which the
 * work must tolerate (the state fold does: KV revisions settle its writes).
 *
 * @module
 */
import { getLogger } from "../../pkg/logger/mod.ts";
import type { Leases } from "../leases.ts";

const log = getLogger(["engine", "role"]);

/** How often an engine without the role asks for it. */
export const ROLE_RETRY_MS = 1_000;

/** The work of a role while it is held. */
export interface RoleWork {
  stop(): Promise<void>;
}

export class ExclusiveRole {
  private work?: RoleWork;
  private timer?: ReturnType<typeof setTimeout>;
  private tick?: Promise<void>;
  private stopped = false;

  constructor(
    private readonly leases: Leases,
    private readonly key: string,
    private readonly begin: () => Promise<RoleWork>,
    private readonly retryMs = ROLE_RETRY_MS,
  ) {}

  /** Whether this engine plays the role now. */
  get held(): boolean {
    return this.work !== undefined;
  }

  /**
   * Asks for the role once (a failure to start its work is thrown: a start that JetStream did not answer is
   * tried again by the caller), then keeps asking or renewing in the background until stop.
   */
  async start(): Promise<void> {
    await this.claim("debug");
    this.schedule();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.tick?.catch(() => {}); // Its failure was logged where it happened.
    const work = this.work;
    this.work = undefined;
    if (work) {
      await work.stop();
      await this.leases.release(this.key);
    }
  }

  private schedule(): void {
    if (this.stopped) return;
    const delay = this.work ? Math.max(100, Math.min(this.leases.ttlMs / 5, 60_000)) : this.retryMs;
    this.timer = setTimeout(() => {
      this.tick = (this.work ? this.renew() : this.claim("info")).catch((error) =>
        log.warn("Role {role}: {error}; trying again in {delay} ms", { role: this.key, error, delay })
      ).finally(() => this.schedule());
    }, delay);
  }

  /**
   * `level`: taking the role at start is routine (a `compozy dev` terminal printed it as a raw log line on every
   * start); taking it later, from an engine that lost it, is an operator's event.
   */
  private async claim(level: "debug" | "info"): Promise<void> {
    if ((await this.leases.claim(this.key)) !== "acquired") return;
    try {
      this.work = await this.begin();
    } catch (e) {
      await this.leases.release(this.key);
      throw e;
    }
    log[level]("This engine took the role {role}", { role: this.key });
  }

  private async renew(): Promise<void> {
    const status = await this.leases.refresh(this.key);
    if (status === "held" || status === "unconfirmed" || !this.work) return;
    log.warn("Role {role} {status}: another engine may take it; stopping its work here", {
      role: this.key,
      status,
    });
    const work = this.work;
    this.work = undefined;
    await work.stop();
  }
}
