/**
 * Starting a stdio MCP server (pkg/runtime/mcp/mcp_toolbox.ts): the start is a process to run, not a request,
 * so it is bounded by STDIO_START_TIMEOUT_MS however short the server's per-request `timeout`; a server whose
 * process ends before answering fails with `agent_mcp_unavailable` quoting what it wrote on stderr.
 */

import assert from "node:assert/strict";
import { AgentFailure } from "../../pkg/runtime/agent/mod.ts";
import { MAX_LISTED_TOOLS, MAX_SERVER_LOG_BYTES, openMcpToolbox } from "../../pkg/runtime/mcp/mcp_toolbox.ts";
import { LOG_LINE_COST } from "../../pkg/runtime/protocol.ts";
import { join } from "node:path";
import { eventually, processAlive } from "../runtime/_helpers.ts";

const fixture = (name: string) => new URL(`./fixtures/${name}`, import.meta.url).pathname;

Deno.test({
  name: "a stdio MCP server slower to start than its per-request timeout is waited for",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "compozy-mcp-start-" });
    try {
      // The server answers `initialize` 3 s after its process started, past its 1 s request time-out.
      const box = await openMcpToolbox([{
        id: "slow",
        script: fixture("mcp_slow_start_server.ts"),
        args: ["3000"],
        cwd: dir,
        timeoutMs: 1_000,
      }], { maxOutputBytes: 1_000 });
      try {
        assert.deepEqual(box.tools.map((tool) => tool.id), ["ping"]);
        assert.equal(await box.call("ping", {}), "pong");
      } finally {
        await box.close();
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "a stdio MCP server whose process ends before answering: agent_mcp_unavailable with its stderr",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "compozy-mcp-start-" });
    try {
      let failure: unknown;
      try {
        await openMcpToolbox(
          [{ id: "broken", script: fixture("mcp_crashing_server.ts"), cwd: dir, timeoutMs: 5_000 }],
          { maxOutputBytes: 1_000 },
        );
      } catch (error) {
        failure = error;
      }
      assert.ok(failure instanceof AgentFailure, String(failure));
      assert.equal(failure.code, "agent_mcp_unavailable");
      assert.equal(failure.retryable, true);
      assert.match(
        failure.message,
        /MCP server 'broken' \(script .*mcp_crashing_server\.ts\): connecting failed: .*Connection closed: the server's process ended before answering; its stderr: crashing server: cannot open its database/,
      );
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "red team 8 S8: a stdio server writing past its share of stdout is cut off, agent_mcp_invalid",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "compozy-mcp-flood-" });
    const server = (notifications: number) => ({
      id: "flood",
      script: fixture("mcp_flood_server.ts"),
      args: [String(notifications)],
      cwd: dir,
      timeoutMs: 60_000,
    });
    try {
      // Within its share (a reply's worth per request: 4 × 64 KiB + 64 KiB here), the list comes through.
      const box = await openMcpToolbox([server(0)], { maxOutputBytes: 64 * 1024 });
      assert.deepEqual(box.tools.map((tool) => tool.id), ["ping"]);
      await box.close();
      // 64 MiB of valid notifications before the list. Before: every line was joined, parsed and validated on
      // the runtime's thread, and the list came through at the end.
      let failure: unknown;
      try {
        await (await openMcpToolbox([server(64)], { maxOutputBytes: 64 * 1024 })).close();
      } catch (error) {
        failure = error;
      }
      assert.ok(failure instanceof AgentFailure, String(failure));
      assert.equal(failure.code, "agent_mcp_invalid", failure.message);
      assert.match(failure.message, /listing tools failed: the reply is over \d+ bytes/);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "red team 8 S10: a stdio server's stderr puts at most a tool call's log budget in the logs",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "compozy-mcp-stderr-" });
    try {
      const records: string[] = [];
      const box = await openMcpToolbox([{
        id: "noisy",
        script: fixture("mcp_flood_server.ts"),
        args: ["20000", "stderr"],
        cwd: dir,
        timeoutMs: 60_000,
      }], { maxOutputBytes: 64 * 1024, onServerOutput: (_server, text) => records.push(text) });
      await box.close();
      // 40 MB written. Before: every chunk read became a record, 40 MB of them.
      const logged = records.slice(0, -1).reduce((sum, text) => sum + text.length + LOG_LINE_COST, 0);
      assert.ok(logged <= MAX_SERVER_LOG_BYTES, `${records.length} records, ${logged} bytes`);
      assert.match(records.at(-1)!, /over 262144 bytes of log for this start; the rest is dropped/);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "red team 8 S13: a server listing too many tools is refused, and left-out names are one record",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "compozy-mcp-tools-" });
    const server = (count: number) => ({
      id: "many",
      script: fixture("mcp_flood_server.ts"),
      args: [String(count), "tools"],
      cwd: dir,
      timeoutMs: 60_000,
    });
    try {
      const box = await openMcpToolbox([server(3)], { maxOutputBytes: 64 * 1024 });
      assert.deepEqual(box.tools.map((tool) => tool.id), ["ping"]);
      await box.close();
      // Before: 120,000 listed, each left-out name one warning record on the runtime's thread.
      let failure: unknown;
      try {
        await (await openMcpToolbox([server(MAX_LISTED_TOOLS)], { maxOutputBytes: 64 * 1024 })).close();
      } catch (error) {
        failure = error;
      }
      assert.ok(failure instanceof AgentFailure, String(failure));
      assert.equal(failure.code, "agent_mcp_invalid");
      assert.match(failure.message, /lists more than 1000 tools/);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "red team 8 S15: a stdio server ignoring SIGTERM does not outlive its toolbox",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "compozy-mcp-sticky-" });
    const pidFile = join(dir, "pid");
    let pid = 0;
    try {
      const box = await openMcpToolbox([{
        id: "sticky",
        script: fixture("mcp_sticky_server.ts"),
        args: [pidFile],
        cwd: dir,
        timeoutMs: 60_000,
        permissions: { write: [dir] },
      }], { maxOutputBytes: 64 * 1024 });
      pid = Number(await Deno.readTextFile(pidFile));
      await box.close();
      // Before: still running (and adopted by PID 1 once the runtime ended).
      assert.ok(await eventually(() => !processAlive(pid), 10_000), `server ${pid} still running`);
    } finally {
      if (pid && processAlive(pid)) Deno.kill(pid, "SIGKILL");
      await Deno.remove(dir, { recursive: true });
    }
  },
});
