/**
 * An MCP server on stdio with one tool, `lookup_order`, answering from a fixed table so that the example
 * runs offline. It speaks the protocol's JSON-RPC messages itself (one per line) so that it needs no package
 * download; a real server would use `npm:@modelcontextprotocol/sdk` (see docs/yaml-reference.md, "mcp").
 */

const ORDERS: Record<string, { status: string; eta: string }> = {
  "A-100": { status: "shipped", eta: "tomorrow" },
  "A-200": { status: "packing", eta: "in 3 days" },
};

const TOOLS = [{
  name: "lookup_order",
  description: "The status of an order and when it should arrive",
  inputSchema: { type: "object", properties: { order: { type: "string" } }, required: ["order"] },
}];

interface Request {
  id?: number | string;
  method: string;
  params?: { protocolVersion?: string; name?: string; arguments?: { order?: string } };
}

function answer(request: Request): unknown {
  switch (request.method) {
    case "initialize":
      return {
        protocolVersion: request.params?.protocolVersion ?? "2025-06-18",
        capabilities: { tools: {} },
        serverInfo: { name: "orders", version: "1.0.0" },
      };
    case "ping":
      return {};
    case "tools/list":
      return { tools: TOOLS };
    case "tools/call": {
      const id = String(request.params?.arguments?.order ?? "");
      const order = ORDERS[id];
      if (request.params?.name !== "lookup_order" || !order) {
        return { isError: true, content: [{ type: "text", text: `no order '${id}'` }] };
      }
      return { content: [{ type: "text", text: JSON.stringify(order) }], structuredContent: order };
    }
    default:
      throw new Error(`unknown method '${request.method}'`);
  }
}

const encoder = new TextEncoder();
const send = (message: unknown) => Deno.stdout.writeSync(encoder.encode(JSON.stringify(message) + "\n"));

let buffer = "";
for await (const chunk of Deno.stdin.readable.pipeThrough(new TextDecoderStream())) {
  buffer += chunk;
  let end: number;
  while ((end = buffer.indexOf("\n")) >= 0) {
    const line = buffer.slice(0, end).trim();
    buffer = buffer.slice(end + 1);
    if (!line) continue;
    const request = JSON.parse(line) as Request;
    // Notifications (no id) need no answer.
    if (request.id === undefined) continue;
    try {
      send({ jsonrpc: "2.0", id: request.id, result: answer(request) });
    } catch (error) {
      send({ jsonrpc: "2.0", id: request.id, error: { code: -32601, message: (error as Error).message } });
    }
  }
}
