/**
 * A TCP relay between one process and nats-server whose uplink can be held: while held, what the process
 * sends waits in the relay and reaches the server only on release, in order. With the process stopped
 * (SIGSTOP), this is a paused VM: bytes its NATS client handed to the network before the pause arrive when
 * it runs again. (A SIGSTOP alone cannot hold them: the kernel sends what is in the socket's buffer.) What
 * the server sends goes through at once.
 */
export class HeldLink {
  private held = false;
  /** When set, the uplink is held from the first chunk whose text matches it (see holdFrom). */
  private holdPattern?: RegExp;
  private heldBytes: Uint8Array[] = [];
  private readonly uplinks: Array<(chunk: Uint8Array) => void> = [];
  private readonly watchers = new Set<() => void>();
  private readonly conns = new Set<Deno.Conn>();

  private constructor(
    private readonly listener: Deno.TcpListener,
    private readonly target: Deno.ConnectOptions,
  ) {
    this.accept();
  }

  /** Listens on a free loopback port and relays each connection to `natsUrl` (`nats://host:port`). */
  static start(natsUrl: string): HeldLink {
    const url = new URL(natsUrl.replace(/^nats:/, "http:"));
    const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    return new HeldLink(listener, { hostname: url.hostname, port: Number(url.port) });
  }

  /** The URL a process connects to instead of the server's. */
  get url(): string {
    return `nats://127.0.0.1:${this.listener.addr.port}`;
  }

  /** From now on, what the process sends is held. */
  hold(): void {
    this.held = true;
  }

  /** From the first chunk the process sends whose text matches `pattern` (included), what it sends is held. */
  holdFrom(pattern: RegExp): void {
    this.holdPattern = pattern;
  }

  /** Resolves once the held bytes (as latin1 text) match `pattern`; rejects after `timeoutMs`. */
  heldMatching(pattern: RegExp, timeoutMs: number): Promise<string> {
    return new Promise((resolve, reject) => {
      const check = () => {
        const text = new TextDecoder("latin1").decode(concat(this.heldBytes));
        const match = text.match(pattern);
        if (!match) return;
        done();
        resolve(match[0]);
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`no held bytes matched ${pattern} within ${timeoutMs} ms`));
      }, timeoutMs);
      const done = () => {
        clearTimeout(timer);
        this.watchers.delete(check);
      };
      this.watchers.add(check);
      check();
    });
  }

  /** Sends what was held, in order, and stops holding. */
  release(): void {
    this.held = false;
    const chunks = this.heldBytes.splice(0);
    for (const chunk of chunks) for (const send of this.uplinks) send(chunk);
  }

  close(): void {
    this.listener.close();
    for (const conn of this.conns) {
      try {
        conn.close();
      } catch {
        // Closed by its other end already.
      }
    }
  }

  private async accept(): Promise<void> {
    for await (const client of this.listener) {
      const server = await Deno.connect(this.target);
      this.conns.add(client).add(server);
      // One chain of writes per direction keeps the bytes in order whatever the held state does.
      let upChain = Promise.resolve();
      const send = (chunk: Uint8Array) => {
        upChain = upChain.then(() => writeAll(server, chunk)).catch(() => {});
      };
      this.uplinks.push(send);
      pipe(server, (chunk) => writeAll(client, chunk));
      pipe(client, (chunk) => {
        if (this.holdPattern?.test(new TextDecoder("latin1").decode(chunk))) {
          this.holdPattern = undefined;
          this.held = true;
        }
        if (!this.held) return send(chunk);
        this.heldBytes.push(chunk);
        for (const watch of [...this.watchers]) watch();
      });
    }
  }
}

async function pipe(from: Deno.Conn, to: (chunk: Uint8Array) => unknown): Promise<void> {
  const buffer = new Uint8Array(64 * 1024);
  try {
    while (true) {
      const n = await from.read(buffer);
      if (n === null) break;
      await to(buffer.slice(0, n));
    }
  } catch {
    // The relay or a peer closed the connection: the test is over.
  }
}

async function writeAll(conn: Deno.Conn, chunk: Uint8Array): Promise<void> {
  let written = 0;
  while (written < chunk.length) written += await conn.write(chunk.subarray(written));
}

function concat(chunks: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}
