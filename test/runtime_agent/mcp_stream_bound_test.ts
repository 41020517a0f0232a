/**
 * An MCP `url` server's event streams are bounded (issue 10): the GET stream of server messages
 * (streamable HTTP) and the SSE transport's stream (which carries the answers too) were read without a
 * bound, so a server streaming one event without end grew the runtime's memory (the SSE parser keeps the
 * event's text whole) and one streaming small events without end kept its thread parsing them, for as long as
 * the agent call lasted. Real loopback HTTP servers (`Deno.serve`) that stream without end.
 */
import assert from "node:assert/strict";
import { AgentFailure } from "../../pkg/runtime/agent/agent_failure.ts";
import { McpCallFailure } from "../../pkg/runtime/mcp/mcp_failure.ts";
import { maxResponseBytes, openMcpToolbox } from "../../pkg/runtime/mcp/mcp_toolbox.ts";
import { eventually } from "../runtime/_helpers.ts";

/** What the server gives a client before it floods: at most this is read before the flood is cut. */
const MAX_OUTPUT_BYTES = 1_000;
const LIMIT = maxResponseBytes(MAX_OUTPUT_BYTES);
/** The flood stops by itself here, so that a runtime that reads it all is still alive to fail the test. */
const FLOOD_CAP = 128 * 1024 * 1024;
/** What the server may have written once the client cut the flood: the limit, and the sockets' buffers. */
const CUT_BY = 16 * 1024 * 1024;

const encoder = new TextEncoder();
const CHUNK = 64 * 1024;

/** One event that never ends, or small valid notifications without end. */
type FloodKind = "one endless event" | "endless small events";

function floodChunks(kind: FloodKind): { head: Uint8Array; next: () => Uint8Array } {
  if (kind === "one endless event") {
    const chunk = encoder.encode("x".repeat(CHUNK));
    return { head: encoder.encode("data: "), next: () => chunk };
  }
  const event = `data: ${
    JSON.stringify({
      jsonrpc: "2.0",
      method: "notifications/message",
      params: { level: "info", data: "y".repeat(200) },
    })
  }\n\n`;
  const chunk = encoder.encode(event.repeat(Math.floor(CHUNK / event.length)));
  return { head: new Uint8Array(0), next: () => chunk };
}

/** A loopback MCP server whose event stream floods after `delayMs`; counts what it wrote. */
class FloodServer {
  readonly #server: Deno.HttpServer;
  sent = 0;
  cut = false;
  /** Messages the client POSTed, by method. */
  readonly posted: string[] = [];

  constructor(readonly transport: "sse" | "streamable-http", readonly kind: FloodKind, delayMs: number) {
    this.#server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (request) => {
      if (request.method === "GET") return this.#stream(delayMs);
      if (request.method !== "POST") return new Response(null, { status: 405 });
      const message = await request.json() as { id?: number; method: string };
      this.posted.push(message.method);
      // The SSE transport's answers go on its stream, which floods instead: it is never answered.
      if (transport === "sse" || message.id === undefined) return new Response(null, { status: 202 });
      return Response.json({ jsonrpc: "2.0", id: message.id, result: answer(message.method) });
    });
  }

  get url(): string {
    const { port } = this.#server.addr as Deno.NetAddr;
    return `http://127.0.0.1:${port}/${this.transport === "sse" ? "sse" : "mcp"}`;
  }

  #stream(delayMs: number): Response {
    const { head, next } = floodChunks(this.kind);
    let started = false;
    const body = new ReadableStream<Uint8Array>({
      pull: async (controller) => {
        if (!started) {
          started = true;
          if (this.transport === "sse") {
            controller.enqueue(encoder.encode("event: endpoint\ndata: /messages\n\n"));
          }
          await new Promise((r) => setTimeout(r, delayMs));
          controller.enqueue(head);
          return;
        }
        if (this.sent >= FLOOD_CAP) return controller.close();
        const chunk = next();
        this.sent += chunk.length;
        controller.enqueue(chunk);
      },
      cancel: () => {
        this.cut = true;
      },
    }, { highWaterMark: 0 });
    return new Response(body, { headers: { "content-type": "text/event-stream" } });
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.#server.shutdown();
  }
}

function answer(method: string): unknown {
  switch (method) {
    case "initialize":
      return {
        protocolVersion: "2025-06-18",
        capabilities: { tools: {} },
        serverInfo: { name: "flood", version: "1.0.0" },
      };
    case "tools/list":
      return { tools: [{ name: "ping", inputSchema: { type: "object" } }] };
    case "tools/call":
      return { content: [{ type: "text", text: "pong" }] };
    default:
      return {};
  }
}

for (const kind of ["one endless event", "endless small events"] as const) {
  Deno.test({
    name: `MCP streamable HTTP: a GET stream of ${kind} is cut at the bound and the next call fails`,
    sanitizeResources: false,
    sanitizeOps: false,
    async fn() {
      // The flood starts once the tools are listed, so the cut comes during the loop, not at the start.
      await using server = new FloodServer("streamable-http", kind, 500);
      const box = await openMcpToolbox(
        [{ id: "flood", url: server.url, timeoutMs: 10_000 }],
        { maxOutputBytes: MAX_OUTPUT_BYTES },
      );
      try {
        assert.deepEqual(box.tools.map((tool) => tool.id), ["ping"]);
        await eventually(() => server.cut || server.sent >= FLOOD_CAP, 10_000);
        assert.ok(server.cut, `the runtime read ${server.sent} bytes of the stream and did not cut it`);
        assert.ok(server.sent <= CUT_BY, `${server.sent} bytes were sent before the cut (limit ${LIMIT})`);
        const failure = await box.call("ping", {}).then(() => undefined, (e) => e);
        assert.ok(failure instanceof McpCallFailure, String(failure));
        assert.equal(failure.code, "mcp_output_too_large", failure.message);
        assert.match(failure.message, /the server sent .* on its event stream.* and was cut off/);
      } finally {
        await box.close();
      }
    },
  });

  Deno.test({
    name: `MCP SSE: a stream of ${kind} instead of the answers fails the start at the bound`,
    sanitizeResources: false,
    sanitizeOps: false,
    async fn() {
      await using server = new FloodServer("sse", kind, 0);
      const started = performance.now();
      const failure = await openMcpToolbox(
        [{ id: "flood", url: server.url, transport: "sse", timeoutMs: 5_000 }],
        { maxOutputBytes: MAX_OUTPUT_BYTES },
      ).then(async (box) => (await box.close(), undefined), (e) => e);
      const tookMs = performance.now() - started;
      assert.ok(failure instanceof AgentFailure, String(failure));
      assert.equal(failure.code, "agent_mcp_invalid", failure.message);
      assert.match(
        failure.message,
        /connecting failed: the server sent .* on its event stream.*, and was cut off/,
      );
      assert.ok(tookMs < 4_000, `the start failed after ${Math.round(tookMs)} ms, not at the bound`);
      await eventually(() => server.cut, 5_000);
      assert.ok(server.cut, `the runtime read ${server.sent} bytes of the stream and did not cut it`);
      assert.ok(server.sent <= CUT_BY, `${server.sent} bytes were sent before the cut (limit ${LIMIT})`);
    },
  });
}
