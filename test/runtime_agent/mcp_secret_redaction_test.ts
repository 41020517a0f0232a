/**
 * A `script` MCP server's env values (its `env:`, often a token from `.env`) never reach what the runtime
 * reports about it: the log records of its stderr, a start failure quoting that stderr, a failed call's message
 * (which the model reads and the agent's history keeps). A sandbox tool's env values are kept out of its logs
 * and failures the same way (pkg/runtime/secret_redaction.ts); before (outside break attempt brk38), a script
 * server's were repeated in all three.
 */

import assert from "node:assert/strict";
import { AgentFailure } from "../../pkg/runtime/agent/mod.ts";
import { McpCallFailure } from "../../pkg/runtime/mcp/mcp_failure.ts";
import { openMcpToolbox } from "../../pkg/runtime/mcp/mcp_toolbox.ts";
import { REDACTED } from "../../pkg/runtime/secret_redaction.ts";

const script = new URL("./fixtures/mcp_secret_server.ts", import.meta.url).pathname;
const TOKEN = "tok-3f9a1c77e2b54d08";

function server(dir: string, args: string[] = []) {
  return {
    id: "secret",
    script,
    args,
    cwd: dir,
    timeoutMs: 30_000,
    env: { TOKEN },
    permissions: { env: ["TOKEN"] },
  };
}

async function failureOf(work: () => Promise<unknown>): Promise<Error> {
  try {
    await work();
  } catch (error) {
    return error as Error;
  }
  throw new Error("expected a failure");
}

Deno.test({
  name: "brk38: a script server's env values are not in its stderr records nor in its calls' failures",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "compozy-mcp-secret-" });
    try {
      const records: string[] = [];
      const box = await openMcpToolbox([server(dir)], {
        maxOutputBytes: 64 * 1024,
        onServerOutput: (_server, text) => records.push(text),
      });
      let failed: Error, rejected: Error;
      try {
        failed = await failureOf(() => box.call("fail", {}));
        rejected = await failureOf(() => box.call("reject", {}));
      } finally {
        await box.close();
      }
      assert.ok(failed instanceof McpCallFailure, String(failed));
      assert.equal(failed.code, "mcp_tool_error");
      assert.equal(
        failed.message,
        `MCP tool 'fail' of server 'secret' failed: token ${REDACTED} was refused`,
      );
      assert.ok(rejected instanceof McpCallFailure, String(rejected));
      assert.equal(rejected.code, "mcp_tool_error");
      assert.match(rejected.message, new RegExp(`bad token \\${REDACTED.slice(0, -1)}\\]`));
      assert.ok(!String(rejected.cause ?? "").includes(TOKEN), "the failure's cause keeps the token");
      assert.ok(!rejected.message.includes(TOKEN) && !failed.message.includes(TOKEN));
      const said = records.join("\n");
      assert.match(said, /secret server: using token \[redacted\]/);
      assert.ok(!said.includes(TOKEN), said);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "brk38: a script server that ends at start is quoted without its env values",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "compozy-mcp-secret-" });
    try {
      const failure = await failureOf(() =>
        openMcpToolbox([server(dir, ["crash"])], { maxOutputBytes: 1_000 })
      );
      assert.ok(failure instanceof AgentFailure, String(failure));
      assert.equal(failure.code, "agent_mcp_unavailable");
      assert.match(failure.message, /its stderr: secret server: using token \[redacted\]/);
      assert.ok(!failure.message.includes(TOKEN), failure.message);
      assert.ok(!String(failure.cause ?? "").includes(TOKEN), "the failure's cause keeps the token");
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "brk38: a url server's key in its URL is not in its failures",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    // Nothing listens on port 9 of this host: connecting fails, quoting the server's URL.
    const failure = await failureOf(() =>
      openMcpToolbox([{
        id: "remote",
        url: `http://127.0.0.1:9/mcp?api_key=${TOKEN}&mode=x`,
        timeoutMs: 10_000,
      }], { maxOutputBytes: 1_000 })
    );
    assert.ok(failure instanceof AgentFailure, String(failure));
    assert.equal(failure.code, "agent_mcp_unavailable");
    assert.ok(!failure.message.includes(TOKEN), failure.message);
    assert.match(failure.message, /api_key=\[redacted\]/);
  },
});
