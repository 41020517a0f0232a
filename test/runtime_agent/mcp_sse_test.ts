/**
 * `transport: sse`: the older HTTP+SSE MCP transport, against the official SDK's SSE server on loopback
 * (a node:http server, as the SDK's SSE server class needs): tools are listed and called, with the headers.
 */

import assert from "node:assert/strict";
import { createServer } from "node:http";
import { Server } from "@modelcontextprotocol/sdk/server/index.js";
import { SSEServerTransport } from "@modelcontextprotocol/sdk/server/sse.js";
import { CallToolRequestSchema, ListToolsRequestSchema } from "@modelcontextprotocol/sdk/types.js";
import { openMcpToolbox } from "../../pkg/runtime/mcp/mcp_toolbox.ts";

Deno.test({
  name: "MCP toolbox over SSE: lists and calls tools, sending the configured headers",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const sessions = new Map<string, SSEServerTransport>();
    const seen: (string | undefined)[] = [];
    const http = createServer(async (req, res) => {
      const url = new URL(req.url!, "http://127.0.0.1");
      seen.push(req.headers.authorization);
      if (req.method === "GET" && url.pathname === "/sse") {
        const transport = new SSEServerTransport("/messages", res);
        sessions.set(transport.sessionId, transport);
        const server = new Server({ name: "sse", version: "1.0.0" }, { capabilities: { tools: {} } });
        server.setRequestHandler(ListToolsRequestSchema, () => ({
          tools: [{ name: "ping", inputSchema: { type: "object", properties: {} } }],
        }));
        server.setRequestHandler(
          CallToolRequestSchema,
          () => ({ content: [{ type: "text", text: "pong" }] }),
        );
        await server.connect(transport);
      } else if (req.method === "POST" && sessions.has(url.searchParams.get("sessionId") ?? "")) {
        await sessions.get(url.searchParams.get("sessionId")!)!.handlePostMessage(req, res);
      } else {
        res.writeHead(404).end();
      }
    });
    await new Promise<void>((resolve) => http.listen(0, "127.0.0.1", resolve));
    try {
      const { port } = http.address() as { port: number };
      const box = await openMcpToolbox([{
        id: "pinger",
        url: `http://127.0.0.1:${port}/sse`,
        transport: "sse",
        headers: { Authorization: "Bearer s3cret" },
        timeoutMs: 10_000,
      }], { maxOutputBytes: 1_000 });
      try {
        assert.deepEqual(box.tools.map((tool) => tool.id), ["ping"]);
        assert.equal(await box.call("ping", {}), "pong");
      } finally {
        await box.close();
      }
      assert.ok(seen.length >= 3, `the stream and the posts: ${seen.length} requests`);
      assert.ok(seen.every((header) => header === "Bearer s3cret"), JSON.stringify(seen));
    } finally {
      http.closeAllConnections();
      await new Promise((resolve) => http.close(resolve));
    }
  },
});
