/**
 * A NATS transport on Deno's own sockets (`Deno.connect`, `Deno.startTls`), for nats-core's `Transport`.
 *
 * Why: `@nats-io/transport-node` runs on Deno's node-compat `net`/`tls` layer (streams, event emitters and
 * Buffer copies around every read and write); a V8 profile of the engine under load put ~44% of its CPU
 * there (docs/performance.md). `@nats-io/transport-deno` would avoid it but is published only on JSR, which
 * this project cannot rely on reaching, so this is our own, written against nats-core's contract:
 *
 * - `connect()` dials, reads the server's INFO, upgrades to TLS when the server requires it, offers it and
 *   the client did not refuse it (`tls: null`), or the client asked for it (`tls: {...}`), then hands the
 *   bytes read so far to the parser through the iterator;
 * - the iterator yields every chunk read until the socket ends or fails;
 * - `closed()` settles once a connection that was established ends, for whatever reason: nats-core starts a
 *   reconnect from it. A dial that failed never settles it (nats-core handles that failure itself, and a
 *   settled promise would start a second reconnect loop);
 * - `send()` never blocks the caller: frames queue and one writer drains them, joined into one write.
 */
import {
  checkOptions,
  DataBuffer,
  type Deferred,
  deferred,
  errors,
  extractProtocolMessage,
  INFO,
  type Server,
  type ServerInfo,
  type TlsOptions,
  type Transport,
} from "@nats-io/nats-core/internal";
import type { ConnectionOptions } from "@nats-io/nats-core";

/** Reported to the server in CONNECT, so its monitoring tells our client apart from the stock ones. */
const LANG = "nats.deno.compozy";
const VERSION = "3.4.0";

/**
 * Reads land in a slab and are yielded as views of it. nats-core's parser keeps views of the chunks it is
 * given (a message's payload is a subarray of the chunk), so a region once yielded is never written again:
 * the next read goes into the slab's unused rest, and a new slab starts when the rest is small. This costs
 * one allocation per slab instead of one per read, and no copy.
 */
const SLAB_BYTES = 256 * 1024;
const MIN_READ_BYTES = 32 * 1024;

export class DenoTransport implements Transport {
  readonly lang = LANG;
  readonly version = VERSION;
  closeError?: Error;

  private conn?: Deno.Conn | Deno.TlsConn;
  private options!: ConnectionOptions;
  private encrypted = false;
  /** The connection was established (INFO read, TLS done): only then does its end settle `closed()`. */
  private established = false;
  private done = false;
  private readonly closedNotification: Deferred<void | Error> = deferred();

  /** Bytes read while waiting for INFO, handed to the parser first (they hold INFO itself). */
  private preamble?: Uint8Array;
  private slab = new Uint8Array(SLAB_BYTES);
  private slabUsed = 0;
  /** The read in flight, awaited on close so no socket op outlives the connection. */
  private pendingRead?: Promise<number | null>;

  private queued: Uint8Array[] = [];
  private queuedBytes = 0;
  /** The writer draining `queued`; undefined when idle. */
  private writer?: Promise<void>;

  async connect(server: Server, options: ConnectionOptions): Promise<void> {
    this.options = options;
    const tls = options.tls;
    try {
      if (tls?.handshakeFirst) {
        this.conn = await Deno.connectTls({
          hostname: server.hostname,
          port: server.port,
          ...await tlsSettings(tls, server),
        });
        this.encrypted = true;
      } else {
        const tcp = await Deno.connect({ hostname: server.hostname, port: server.port });
        // Requests and replies are small: Nagle's algorithm would hold them back waiting for an ACK.
        tcp.setNoDelay(true);
        this.conn = tcp;
      }
      // nats-core may have given up on this dial (its timeout) while we waited.
      if (this.done) throw new errors.ConnectionError("connection closed while dialing");
      const info = await this.readInfo();
      checkOptions(info, options);
      const offered = info.tls_available === true && tls !== null;
      if (!this.encrypted && (info.tls_required || offered || (tls && !tls.handshakeFirst))) {
        const secured = await Deno.startTls(this.conn as Deno.TcpConn, await tlsSettings(tls, server));
        this.conn = secured;
        // startTls resolves before the handshake; running it here makes a refused certificate fail the dial
        // instead of the first publish.
        await secured.handshake();
        this.encrypted = true;
      }
      if (this.done) throw new errors.ConnectionError("connection closed while dialing");
      this.established = true;
    } catch (cause) {
      this.done = true;
      this.closeConn();
      if (cause instanceof Deno.errors.ConnectionRefused) {
        throw new errors.ConnectionError("connection refused", { cause });
      }
      throw cause;
    }
  }

  get isClosed(): boolean {
    return this.done;
  }

  isEncrypted(): boolean {
    return this.encrypted;
  }

  /** Reads until the server's first protocol line (INFO) is complete; keeps the bytes for the parser. */
  private async readInfo(): Promise<ServerInfo> {
    const inbound = new DataBuffer();
    while (true) {
      const chunk = await this.readChunk();
      if (chunk === null) throw new errors.ConnectionError("the server closed the connection before INFO");
      inbound.fill(chunk);
      const line = extractProtocolMessage(inbound.peek());
      if (line === "") continue;
      this.preamble = inbound.drain();
      const match = INFO.exec(line);
      if (!match) throw new errors.ProtocolError(`expected INFO from the server, got: ${line.slice(0, 80)}`);
      return JSON.parse(match[1]) as ServerInfo;
    }
  }

  /** One read into the slab; null at the end of the stream. */
  private async readChunk(): Promise<Uint8Array | null> {
    if (SLAB_BYTES - this.slabUsed < MIN_READ_BYTES) {
      this.slab = new Uint8Array(SLAB_BYTES);
      this.slabUsed = 0;
    }
    const start = this.slabUsed;
    this.pendingRead = this.conn!.read(this.slab.subarray(start));
    const n = await this.pendingRead;
    this.pendingRead = undefined;
    if (n === null) return null;
    this.slabUsed += n;
    return this.slab.subarray(start, start + n);
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<Uint8Array> {
    return this.iterate();
  }

  private async *iterate(): AsyncIterableIterator<Uint8Array> {
    if (this.preamble?.length) yield this.preamble;
    this.preamble = undefined;
    let failure: Error | undefined;
    while (!this.done) {
      let chunk: Uint8Array | null;
      try {
        chunk = await this.readChunk();
      } catch (e) {
        // A read interrupted by our own close is the close, not a failure.
        if (!this.done) failure = e instanceof Error ? e : new Error(String(e));
        break;
      }
      if (chunk === null) break;
      yield chunk;
    }
    // The server went away (or the socket failed): settle `closed()` so nats-core reconnects.
    await this.finish(failure, false);
  }

  send(frame: Uint8Array): void {
    if (this.done || !this.conn) return;
    this.queued.push(frame);
    this.queuedBytes += frame.length;
    this.writer ??= this.drain();
  }

  /**
   * Writes what is queued until the queue is empty. Frames queued during a write go out together in the
   * next one: under load nats-core hands over one frame per microtask burst, and joining them saves socket
   * ops. A failed write drops the queue: the read side sees the broken socket and starts the reconnect, and
   * nats-core resends subscriptions itself (the node transport ignores write errors the same way).
   */
  private async drain(): Promise<void> {
    try {
      while (this.queued.length && this.conn) {
        const frame = this.queued.length === 1 ? this.queued[0] : joined(this.queued, this.queuedBytes);
        this.queued = [];
        this.queuedBytes = 0;
        await writeFully(this.conn, frame);
      }
    } catch (e) {
      this.queued = [];
      this.queuedBytes = 0;
      if (this.options.debug) console.error("NATS transport write failed", e);
    } finally {
      this.writer = undefined;
    }
  }

  /** Closed by nats-core: with no error, what is queued is written first. */
  close(err?: Error): Promise<void> {
    return this.finish(err, !err);
  }

  /** A forced reconnect (stale connection or the client's `reconnect()`): end it and let `closed()` say so. */
  disconnect(): void {
    this.finish(undefined, false).catch((e) => {
      if (this.options.debug) console.error("NATS transport disconnect failed", e);
    });
  }

  /** The connection is being replaced by a new dial: release it without reporting anything. */
  discard(): void {
    this.done = true;
    this.closeConn();
  }

  closed(): Promise<void | Error> {
    return this.closedNotification;
  }

  private async finish(err: Error | undefined, flush: boolean): Promise<void> {
    if (this.done) {
      // Already ending: still wait for its socket ops, so a caller's close is complete when it resolves.
      await this.settleOps();
      return;
    }
    this.done = true;
    this.closeError = err;
    if (flush && this.writer) await this.writer;
    this.closeConn();
    await this.settleOps();
    if (this.established) this.closedNotification.resolve(err);
  }

  private closeConn(): void {
    const conn = this.conn;
    this.conn = undefined;
    if (!conn) return;
    try {
      conn.close();
    } catch (e) {
      // Closed already (by the peer's reset or a second close): nothing is left to release.
      if (!(e instanceof Deno.errors.BadResource)) throw e;
    }
  }

  /** Waits for the read and write in flight to end (closing the socket ends them) so no op leaks. */
  private async settleOps(): Promise<void> {
    await Promise.allSettled([this.pendingRead, this.writer]);
  }
}

/** Deno's TLS settings from nats-core's: a CA from `ca`/`caFile`, the server's name for verification. */
async function tlsSettings(
  tls: TlsOptions | null | undefined,
  server: Server,
): Promise<Deno.StartTlsOptions> {
  const settings: Deno.StartTlsOptions = { hostname: server.tlsName || server.hostname };
  if (!tls) return settings;
  // Deno.startTls cannot present a client certificate; refusing beats connecting without the one asked for.
  if (tls.cert || tls.certFile || tls.key || tls.keyFile) {
    throw errors.InvalidArgumentError.format(
      "tls",
      "client certificates are not supported by the Deno transport",
    );
  }
  if (tls.caFile) settings.caCerts = [await Deno.readTextFile(tls.caFile)];
  else if (tls.ca) settings.caCerts = Array.isArray(tls.ca) ? tls.ca : [tls.ca];
  return settings;
}

function joined(frames: Uint8Array[], bytes: number): Uint8Array {
  const out = new Uint8Array(bytes);
  let offset = 0;
  for (const frame of frames) {
    out.set(frame, offset);
    offset += frame.length;
  }
  return out;
}

/** `write` may take part of a buffer (a full socket buffer, e.g. an 8 MiB message): loop until all is out. */
async function writeFully(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  let offset = 0;
  while (offset < bytes.length) offset += await conn.write(bytes.subarray(offset));
}
