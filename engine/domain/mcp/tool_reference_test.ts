import assert from "node:assert/strict";
import { AGENT_TOOL_PATTERN, mcpSelections, parseMcpToolReference } from "./tool_reference.ts";

Deno.test("parseMcpToolReference reads mcp(id=X) and mcp(id=X, tool=Y), and nothing else", () => {
  assert.deepEqual(parseMcpToolReference("mcp(id=docs)"), { server: "docs" });
  assert.deepEqual(parseMcpToolReference("mcp(id=docs, tool=search_Docs)"), {
    server: "docs",
    tool: "search_Docs",
  });
  assert.deepEqual(parseMcpToolReference("mcp(id=docs,tool=a-b)"), { server: "docs", tool: "a-b" });
  assert.equal(parseMcpToolReference("weather_tool"), undefined);
  assert.equal(parseMcpToolReference("mcp(id=Docs)"), undefined);
  assert.equal(parseMcpToolReference("mcp(id=docs, tool=a.b)"), undefined);
});

Deno.test("AGENT_TOOL_PATTERN accepts tool ids and MCP references only", () => {
  const pattern = new RegExp(AGENT_TOOL_PATTERN);
  for (const ok of ["weather_tool", "mcp(id=docs)", "mcp(id=docs, tool=search)"]) {
    assert.ok(pattern.test(ok), ok);
  }
  for (const bad of ["Weather", "mcp(docs)", "mcp(id=docs, tools=search)", "tool(id=x)"]) {
    assert.ok(!pattern.test(bad), bad);
  }
});

Deno.test("mcpSelections: a server named whole gets all its tools; tools named one by one add up", () => {
  const selections = mcpSelections([
    "weather_tool",
    "mcp(id=a, tool=x)",
    "mcp(id=a, tool=y)",
    "mcp(id=a, tool=x)",
    "mcp(id=b, tool=z)",
    "mcp(id=b)",
    "mcp(id=c)",
  ]);
  assert.deepEqual([...selections], [["a", ["x", "y"]], ["b", undefined], ["c", undefined]]);
});
