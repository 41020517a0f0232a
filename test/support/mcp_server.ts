/**
 * An MCP server on loopback for tests, built with the official SDK's server classes: streamable HTTP in
 * stateless mode (one SDK `Server` per request, JSON replies), tools given as plain handlers. It records
 * every request (method and headers) and can answer `tools/list` with anything, malformed lists included.
 *
 * @example
 * ```ts
 * await using mcp = startMcpTestServer({
 *   tools: [{ name: "add", inputSchema: { type: "object" }, run: ({ a, b }) => ({ content: [{ type: "text", text: String(Number(a) + Number(b)) }] }) }],
 * });
 * // point an `mcp:` entry at mcp.url
 * ```
 *
 * @module
 */

import { createServer } from "node:http";
import { Server } from "@modelcontextprotocol/sdk/server/index.js";
import { SSEServerTransport } from "@modelcontextprotocol/sdk/server/sse.js";
import { WebStandardStreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/webStandardStreamableHttp.js";
import {
  type CallToolRequest,
  CallToolRequestSchema,
  ListToolsRequestSchema,
} from "@modelcontextprotocol/sdk/types.js";

export interface TestMcpTool {
  name: string;
  description?: string;
  inputSchema?: Record<string, unknown>;
  /** The `tools/call` result (content, structuredContent, isError); may be slow or throw. */
  run: (args: Record<string, unknown>, closing: AbortSignal) => unknown;
  /**
   * Send `run`'s value as the JSON-RPC result as is, past the SDK server (which refuses to send a malformed
   * result), to see what the client makes of one; a `ReadableStream` is sent as the whole response body.
   */
  raw?: boolean;
}

export interface TestMcpServerOptions {
  tools: TestMcpTool[];
  /** Replaces the `tools/list` result (to send malformed lists, or none). */
  listReply?: (closing: AbortSignal) => unknown;
}

export interface TestMcpServer extends AsyncDisposable {
  /** The streamable-HTTP endpoint. */
  url: string;
  /** Every JSON-RPC method received, with the request's headers, in order. */
  requests: { method: string; headers: Headers }[];
  /** The tools called, in order, with the request's `_meta` when it had one. */
  calls: { name: string; args: Record<string, unknown>; meta?: Record<string, unknown> }[];
  close(): Promise<void>;
}

export function startMcpTestServer(options: TestMcpServerOptions): TestMcpServer {
  const requests: TestMcpServer["requests"] = [];
  const calls: TestMcpServer["calls"] = [];
  // Aborted by close(): a tool still running (a slow one) ends, so the server can shut down.
  const closing = new AbortController();
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (request) => {
    // No server-initiated stream: a GET stream would stay open past the test (clients accept a 405).
    if (request.method === "GET") return new Response(null, { status: 405, headers: { Allow: "POST" } });
    const body = request.method === "POST" ? await request.clone().json().catch(() => null) : null;
    for (const message of [body].flat()) {
      if (message?.method) requests.push({ method: message.method, headers: request.headers });
    }
    const rawTool = body?.method === "tools/call"
      ? options.tools.find((tool) => tool.raw && tool.name === body.params?.name)
      : undefined;
    if (rawTool) {
      const result = await rawTool.run({}, closing.signal);
      if (result instanceof ReadableStream) {
        return new Response(result, { headers: { "content-type": "application/json" } });
      }
      return Response.json({ jsonrpc: "2.0", id: body.id, result });
    }
    const mcp = sdkServer(options, calls, closing.signal);
    const transport = new WebStandardStreamableHTTPServerTransport({
      sessionIdGenerator: undefined,
      enableJsonResponse: true,
    });
    await mcp.connect(transport);
    return await transport.handleRequest(request);
  });
  const { port } = server.addr as Deno.NetAddr;
  const close = async () => {
    closing.abort();
    await server.shutdown();
  };
  return {
    url: `http://127.0.0.1:${port}/mcp`,
    requests,
    calls,
    close,
    [Symbol.asyncDispose]: close,
  };
}

/** Resolves when `signal` aborts: a tool or list that never answers by itself. */
export function untilClosed(signal: AbortSignal): Promise<never> {
  return new Promise((_, reject) =>
    signal.addEventListener("abort", () => reject(new Error("server closed")))
  );
}

function sdkServer(
  options: TestMcpServerOptions,
  calls: TestMcpServer["calls"],
  closing: AbortSignal,
): Server {
  const mcp = new Server({ name: "compozy-test-mcp", version: "1.0.0" }, { capabilities: { tools: {} } });
  mcp.setRequestHandler(ListToolsRequestSchema, () => {
    if (options.listReply) return options.listReply(closing) as never;
    return {
      tools: options.tools.map(({ name, description, inputSchema }) => ({
        name,
        description,
        inputSchema: inputSchema ?? { type: "object", properties: {} },
      })),
    };
  });
  mcp.setRequestHandler(CallToolRequestSchema, async (request: CallToolRequest) => {
    const args = (request.params.arguments ?? {}) as Record<string, unknown>;
    const meta = request.params._meta;
    calls.push({ name: request.params.name, args, ...(meta ? { meta } : {}) });
    const tool = options.tools.find((t) => t.name === request.params.name);
    if (!tool) throw new Error(`no tool ${request.params.name}`);
    return await tool.run(args, closing) as never;
  });
  return mcp;
}

/** An MCP server on the older HTTP+SSE transport (the SDK's SSE server class needs a node:http server). */
export interface TestMcpSseServer extends AsyncDisposable {
  /** The SSE endpoint (`…/sse`) an `mcp:` entry with `transport: sse` names. */
  url: string;
  /** The Authorization header of every request (the stream and each post), in order. */
  authorizations: (string | undefined)[];
  calls: TestMcpServer["calls"];
  close(): Promise<void>;
}

/** Starts an SSE MCP server on 127.0.0.1 serving `tools`. */
export async function startMcpSseTestServer(options: TestMcpServerOptions): Promise<TestMcpSseServer> {
  const sessions = new Map<string, SSEServerTransport>();
  const authorizations: (string | undefined)[] = [];
  const calls: TestMcpServer["calls"] = [];
  const closing = new AbortController();
  const http = createServer(async (req, res) => {
    const url = new URL(req.url!, "http://127.0.0.1");
    authorizations.push(req.headers.authorization);
    if (req.method === "GET" && url.pathname === "/sse") {
      const transport = new SSEServerTransport("/messages", res);
      sessions.set(transport.sessionId, transport);
      await sdkServer(options, calls, closing.signal).connect(transport);
    } else if (req.method === "POST" && sessions.has(url.searchParams.get("sessionId") ?? "")) {
      await sessions.get(url.searchParams.get("sessionId")!)!.handlePostMessage(req, res);
    } else {
      res.writeHead(404).end();
    }
  });
  await new Promise<void>((resolve) => http.listen(0, "127.0.0.1", resolve));
  const { port } = http.address() as { port: number };
  const close = async () => {
    closing.abort();
    http.closeAllConnections();
    await new Promise((resolve) => http.close(resolve));
  };
  return { url: `http://127.0.0.1:${port}/sse`, authorizations, calls, close, [Symbol.asyncDispose]: close };
}
