/**
 * `transport: sse`: the older HTTP+SSE MCP transport, against the official SDK's SSE server on loopback:
 * tools are listed and called, with the headers.
 */

import assert from "node:assert/strict";
import { openMcpToolbox } from "../../pkg/runtime/mcp/mcp_toolbox.ts";
import { startMcpSseTestServer } from "../support/mcp_server.ts";

Deno.test({
  name: "MCP toolbox over SSE: lists and calls tools, sending the configured headers",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await using sse = await startMcpSseTestServer({
      tools: [{ name: "ping", run: () => ({ content: [{ type: "text", text: "pong" }] }) }],
    });
    const box = await openMcpToolbox([{
      id: "pinger",
      url: sse.url,
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
    const seen = sse.authorizations;
    assert.ok(seen.length >= 3, `the stream and the posts: ${seen.length} requests`);
    assert.ok(seen.every((header) => header === "Bearer s3cret"), JSON.stringify(seen));
  },
});
