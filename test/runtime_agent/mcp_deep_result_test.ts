/**
 * An MCP tool's result is bounded in depth like a sandbox tool's output (DEFAULT_MAX_OUTPUT_DEPTH, see
 * output_limits.ts): before (outside break attempt brk38), a server's result nested 100,000 levels deep went
 * to the model and into the agent's history (`agent.tool_call_ended`) as it was, where the API's clients and
 * the JSON tools reading it later break on it; a sandbox tool's was refused past 64 levels.
 */

import assert from "node:assert/strict";
import { McpCallFailure } from "../../pkg/runtime/mcp/mcp_failure.ts";
import { openMcpToolbox } from "../../pkg/runtime/mcp/mcp_toolbox.ts";
import { DEFAULT_MAX_OUTPUT_DEPTH } from "../../pkg/runtime/output_limits.ts";

const script = new URL("./fixtures/mcp_deep_server.ts", import.meta.url).pathname;

async function callDeep(dir: string, depth: number): Promise<unknown> {
  const box = await openMcpToolbox(
    [{ id: "deep", script, args: [String(depth)], cwd: dir, timeoutMs: 30_000 }],
    { maxOutputBytes: 4 * 1024 * 1024 },
  );
  try {
    return await box.call("deep", {});
  } catch (error) {
    return error;
  } finally {
    await box.close();
  }
}

Deno.test({
  name: "brk38: an MCP tool's result nested past the output depth bound fails mcp_result_invalid",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "compozy-mcp-deep-" });
    try {
      // The object and its key take one level: the array may take the rest.
      const fits = await callDeep(dir, DEFAULT_MAX_OUTPUT_DEPTH - 1);
      assert.ok(!(fits instanceof Error), String(fits));
      const deep = await callDeep(dir, 100_000);
      assert.ok(deep instanceof McpCallFailure, `not refused: ${String(deep).slice(0, 100)}`);
      assert.equal(deep.code, "mcp_result_invalid");
      assert.match(deep.message, /nests arrays and objects deeper than 64 levels/);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
