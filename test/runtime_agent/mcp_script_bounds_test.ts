/**
 * A `script` MCP server's CPU and memory are bounded like a tool's (issue 10, sbx2): a call that loops for
 * ever fails `mcp_timeout` at the server's `timeout` and its process is killed (before, it went on burning a
 * core, and every later call of the server waited its whole time-out); a server that allocates without end,
 * on V8's heap or in ArrayBuffers outside it, fails the call `mcp_memory_exceeded` (before: no heap limit, no
 * memory watch). Each time the server is started again for the next call. Real script servers, through the
 * real SDK client.
 */

import assert from "node:assert/strict";
import { McpCallFailure } from "../../pkg/runtime/mcp/mcp_failure.ts";
import { MAX_SCRIPT_RESTARTS, type McpToolbox, openMcpToolbox } from "../../pkg/runtime/mcp/mcp_toolbox.ts";
import { eventually, processAlive } from "../runtime/_helpers.ts";

const fixture = (name: string) => new URL(`./fixtures/${name}`, import.meta.url).pathname;

/** The runaway server, with a per-request `timeout` of `timeoutMs`. */
async function withRunaway(timeoutMs: number, fn: (box: McpToolbox) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "compozy-mcp-runaway-" });
  try {
    const box = await openMcpToolbox([{
      id: "runaway",
      script: fixture("mcp_runaway_server.ts"),
      cwd: dir,
      timeoutMs,
    }], { maxOutputBytes: 10_000 });
    try {
      await fn(box);
    } finally {
      await box.close();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

async function failureOf(call: Promise<unknown>): Promise<McpCallFailure> {
  try {
    await call;
  } catch (error) {
    assert.ok(error instanceof McpCallFailure, String(error));
    return error;
  }
  assert.fail("the call succeeded");
}

const pidOf = async (box: McpToolbox) => Number(await box.call("whoami", {}));

for (
  const c of [
    {
      name: "a call that loops for ever: mcp_timeout, its process killed, started again",
      tool: "spin",
      timeoutMs: 3_000,
      code: "mcp_timeout",
      says:
        /the server's process was killed: its call of 'spin' gave no answer within 3000 ms; it starts again at the next call/,
    },
    {
      name: "a call that allocates on the heap without end: mcp_memory_exceeded, started again",
      tool: "grow",
      timeoutMs: 60_000,
      code: "mcp_memory_exceeded",
      says: /the server's process ran out of memory \(its heap limit is 512 MB\); it starts again/,
    },
    {
      name: "a call that allocates ArrayBuffers without end: mcp_memory_exceeded, started again",
      tool: "grow_buffers",
      timeoutMs: 60_000,
      code: "mcp_memory_exceeded",
      says: /the server's process was killed: its resident memory, \d+ MiB, passed the ceiling of 1088 MiB/,
    },
  ]
) {
  Deno.test({
    name: `script MCP server bounds: ${c.name}`,
    sanitizeResources: false,
    sanitizeOps: false,
    async fn() {
      await withRunaway(c.timeoutMs, async (box) => {
        const first = await pidOf(box);
        const failure = await failureOf(box.call(c.tool, {}));
        assert.equal(failure.code, c.code, failure.message);
        assert.match(failure.message, c.says);
        assert.ok(
          await eventually(() => !processAlive(first)),
          `the server's process ${first} is still alive`,
        );
        const second = await pidOf(box);
        assert.notEqual(second, first);
        assert.ok(processAlive(second));
      });
    },
  });
}

Deno.test({
  name: "script MCP server bounds: a server that keeps looping is started again a bounded number of times",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await withRunaway(2_000, async (box) => {
      for (let i = 0; i <= MAX_SCRIPT_RESTARTS; i++) {
        assert.equal((await failureOf(box.call("spin", {}))).code, "mcp_timeout");
      }
      const last = await failureOf(box.call("whoami", {}));
      assert.equal(last.code, "mcp_unavailable");
      assert.match(
        last.message,
        new RegExp(
          `started again ${MAX_SCRIPT_RESTARTS} times in this agent call and is not started again \\(last: its process was killed: its call of 'spin'`,
        ),
      );
    });
  },
});

Deno.test({
  name: "script MCP server bounds: a server keeping 32 threads busy is killed and started again (brk40)",
  ignore: Deno.build.os !== "linux",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await withRunaway(60_000, async (box) => {
      const first = await pidOf(box);
      // Its derivations hold all 32 of Deno's blocking threads, so even its answer (a write to stdout, which
      // waits for one of them) never goes out. Before: the call waited its whole 60 s time-out, 32 threads
      // runnable meanwhile, and the server's process was killed only then (mcp_timeout).
      const started = performance.now();
      const failure = await failureOf(box.call("burn", {}));
      assert.equal(failure.code, "mcp_cpu_exceeded", failure.message);
      assert.match(failure.message, /threads runnable at once/);
      assert.ok(performance.now() - started < 20_000, `after ${Math.round(performance.now() - started)} ms`);
      assert.ok(
        await eventually(() => !processAlive(first), 10_000),
        `the server's process ${first} is still alive`,
      );
      const second = await pidOf(box);
      assert.notEqual(second, first);
    });
  },
});
