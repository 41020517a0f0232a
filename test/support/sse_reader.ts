/** A live event stream (SSE) of the API read message by message, for tests that follow one as a client does. */
import assert from "node:assert/strict";

/** A generous bound on the whole read (not a timing check): past it the stream is taken as stalled. */
export const STALL_BOUND_MS = 120_000;

export interface SseMessage {
  event?: string;
  id?: string;
  data: string;
}

/** The SSE messages of one stream, read as they come; `next()` is undefined once the stream has closed. */
export class SseReader {
  private buffer = "";
  private readonly reader: ReadableStreamDefaultReader<string>;
  private readonly timer: ReturnType<typeof setTimeout>;

  private constructor(response: Response) {
    this.reader = response.body!.pipeThrough(new TextDecoderStream()).getReader();
    this.timer = setTimeout(() => this.reader.cancel(new Error("the stream stalled")), STALL_BOUND_MS);
  }

  /** Opens `GET {base}/api/executions/{execId}/events` as a live stream. */
  static async open(base: string, execId: string): Promise<SseReader> {
    const response = await fetch(`${base}/api/executions/${execId}/events`, {
      headers: { accept: "text/event-stream" },
    });
    assert.equal(response.status, 200, await (response.ok ? "" : response.text()));
    return new SseReader(response);
  }

  async next(): Promise<SseMessage | undefined> {
    while (true) {
      const end = this.buffer.indexOf("\n\n");
      if (end >= 0) {
        const block = this.buffer.slice(0, end);
        this.buffer = this.buffer.slice(end + 2);
        const lines = block.split("\n");
        const field = (name: string) =>
          lines.filter((l) => l.startsWith(`${name}:`)).map((l) => l.slice(name.length + 1).trimStart());
        const data = field("data");
        if (data.length === 0) continue; // a keep-alive comment
        return { event: field("event")[0], id: field("id")[0], data: data.join("\n") };
      }
      const { value, done } = await this.reader.read();
      if (done) return undefined;
      this.buffer += value;
    }
  }

  /** Reads until a message of `type`, returning the ones before it too; fails if the stream closes first. */
  async until(type: string): Promise<SseMessage[]> {
    const seen: SseMessage[] = [];
    while (true) {
      const message = await this.next();
      assert.ok(message, `the stream closed before ${type}: ${seen.map((m) => m.event).join(", ")}`);
      seen.push(message);
      if (message.event === type) return seen;
    }
  }

  /** Every message left, until the stream closes. */
  async rest(): Promise<SseMessage[]> {
    const seen: SseMessage[] = [];
    for (let m = await this.next(); m; m = await this.next()) seen.push(m);
    return seen;
  }

  close(): void {
    clearTimeout(this.timer);
    this.reader.cancel().catch(() => {}); // closed already: nothing to cancel
  }
}
