/**
 * A live event stream whose client reads slower than the history comes holds the follow back: the server
 * queues a bounded number of events for it, not the whole history (it queued every event of the execution
 * in memory, however large, for as long as the client kept the connection open without reading: outside
 * review api35). Over real HTTP against a real engine and nats-server, with a client that sends its request
 * on a raw socket and reads nothing; then the same stream read to its end is the whole history, in order,
 * each event once, though its follow was given up and made again from where it stopped many times.
 */
import assert from "node:assert/strict";
import { createApp } from "../../server/app.ts";
import type { ExecutionClient } from "../../engine/client.ts";
import type { EventRecord } from "../../engine/state/execution_state.ts";
import { startEngineHarness } from "../support/engine.ts";
import { until } from "../support/until.ts";

const COLLECTIONS = 6;
const ITEMS = 80;
const BLOB = "x".repeat(24 * 1024);

const collection = (n: number) =>
  `  - id: fan${n}
    type: collection
    items: "{{ .workflow.input.items }}"
    task: { id: it${n}, type: aggregate, outputs: { blob: "{{ .workflow.input.blob }}", i: "{{ .item }}" } }
`;

const FILES = {
  "compozy.yaml": "name: sse-slow\nworkflows:\n  - source: ./wf.yaml\n",
  "wf.yaml": `id: big
tasks:
${Array.from({ length: COLLECTIONS }, (_, n) => collection(n)).join("")}  - id: w
    type: wait
    signal: go
    timeout: 5m
`,
};

/** `client` with the events each live follow hands to the API counted. */
function counting(client: ExecutionClient): { client: ExecutionClient; handed: () => number } {
  let handed = 0;
  const counted: ExecutionClient = Object.create(client);
  counted.watchEvents = (execId, onEvent, onLost) =>
    client.watchEvents(execId, (event) => {
      handed++;
      return onEvent(event);
    }, onLost);
  return { client: counted, handed: () => handed };
}

/** Parses the SSE messages of `text` that carry an id (stored events), in order. */
function storedMessages(text: string): { id: number; event: string }[] {
  return text.split("\n\n").flatMap((block) => {
    const id = block.match(/^id: (\d+)$/m)?.[1];
    const event = block.match(/^event: (.+)$/m)?.[1];
    return id && event ? [{ id: Number(id), event }] : [];
  });
}

Deno.test("a live stream's client that reads nothing holds the follow back; read later, the stream is whole", async () => {
  const h = await startEngineHarness(FILES);
  const { client, handed } = counting(h.engine.client);
  const app = createApp({
    client,
    project: h.project,
    version: { version: "test", commit: "test" },
    health: { check: () => Promise.resolve({ status: "ok", components: {} }) },
    natsConnected: () => true,
    logs: { logs: () => Promise.resolve({ records: [], next: null }) },
  });
  const server = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen: () => {} }, app.fetch);
  const items = Array.from({ length: ITEMS }, (_, i) => i);
  const { execId } = await h.engine.client.trigger("big", { items, blob: BLOB });
  let history: EventRecord[] = [];
  const socket = await Deno.connect({ hostname: "127.0.0.1", port: server.addr.port });
  try {
    // Every collection done, the execution waiting: its history is stored (~20 MB) before the client asks.
    await until(async () => (await h.engine.client.get(execId))?.status === "WAITING", 120_000);
    history = await h.engine.client.events(execId);
    const bytes = history.reduce((sum, e) => sum + JSON.stringify(e).length, 0);
    assert.ok(bytes > 16 * 1024 * 1024, `the history is ${bytes} bytes: too small to show a bound`);

    const request = `GET /api/executions/${execId}/events HTTP/1.1\r\nhost: 127.0.0.1\r\n` +
      "accept: text/event-stream\r\n\r\n";
    await socket.write(new TextEncoder().encode(request));
    // The server hands the stream what its socket takes, then stops: wait until the count holds still for
    // a second.
    let last = { count: -1, at: 0 };
    await until(() => {
      const now = handed();
      if (now !== last.count) last = { count: now, at: Date.now() };
      return Promise.resolve(now > 0 && Date.now() - last.at >= 1_000);
    });
    assert.ok(
      handed() < history.length / 2,
      `a client reading nothing had ${handed()} of the ${history.length} events (${bytes} bytes) handed over`,
    );

    const finished = readAll(socket);
    await h.engine.client.signal(execId, "go", {});
    const messages = storedMessages(await finished);
    const after = await h.engine.client.events(execId);
    assert.deepEqual(
      messages.map((m) => m.id),
      after.map((e) => e.seq),
      "the stream is the history: every event once, in order",
    );
    assert.equal(messages.at(-1)?.event, "workflow.success");
  } finally {
    socket.close();
    await server.shutdown();
    await h.close();
  }
});

/** Reads the response on `socket` until its last chunk (the stream ends after the terminal event): its body. */
async function readAll(socket: Deno.Conn): Promise<string> {
  const decoder = new TextDecoder();
  const parts: string[] = [];
  let tail = "";
  while (!tail.endsWith("\r\n0\r\n\r\n")) {
    const buffer = new Uint8Array(1 << 16);
    const n = await socket.read(buffer);
    if (n === null) break;
    const part = decoder.decode(buffer.subarray(0, n), { stream: true });
    parts.push(part);
    tail = (tail + part).slice(-16);
  }
  const raw = parts.join("");
  return dechunked(raw.slice(raw.indexOf("\r\n\r\n") + 4));
}

/** The body of a chunked transfer encoding (sizes in hex, each chunk ended by CRLF). */
function dechunked(chunked: string): string {
  const body: string[] = [];
  let at = 0;
  while (at < chunked.length) {
    const lineEnd = chunked.indexOf("\r\n", at);
    const size = parseInt(chunked.slice(at, lineEnd), 16);
    if (!(size > 0)) break;
    body.push(chunked.slice(lineEnd + 2, lineEnd + 2 + size));
    at = lineEnd + 2 + size + 2;
  }
  return body.join("");
}
