/**
 * MCP tools in the runtime (pkg/runtime/mcp/): connecting and listing at the start of an agent call, calls
 * with time-outs and output limits, and every way a server can be wrong, against MCP servers the test starts
 * on loopback with the official SDK (streamable HTTP, and a Deno script on stdio run with its permissions).
 */

import assert from "node:assert/strict";
import { AgentFailure } from "../../pkg/runtime/agent/mod.ts";
import { McpCallFailure } from "../../pkg/runtime/mcp/mcp_failure.ts";
import type { McpServerWire } from "../../pkg/runtime/mcp/mcp_server_wire.ts";
import { openMcpToolbox } from "../../pkg/runtime/mcp/mcp_toolbox.ts";
import { startMcpTestServer, type TestMcpTool, untilClosed } from "../support/mcp_server.ts";

const text = (value: string) => ({ content: [{ type: "text", text: value }] });

const ADD: TestMcpTool = {
  name: "add",
  description: "Adds two numbers",
  inputSchema: { type: "object", properties: { a: { type: "number" }, b: { type: "number" } } },
  run: ({ a, b }) => text(String(Number(a) + Number(b))),
};

const STRUCTURED: TestMcpTool = {
  name: "forecast",
  run: ({ city }) => ({ content: [text("ignored").content[0]], structuredContent: { city, tempC: 18 } }),
};

const FAILING: TestMcpTool = {
  name: "fails",
  run: () => ({ isError: true, ...text("the backend is down") }),
};

/** Never answers by itself: the client's time-out must end the call. */
const SLOW: TestMcpTool = { name: "slow", run: (_args, closing) => untilClosed(closing) };

const BIG: TestMcpTool = { name: "big", run: () => text("x".repeat(5_000)) };
const MALFORMED: TestMcpTool = { name: "malformed", raw: true, run: () => ({ content: "not a list" }) };

/** A result that never ends: 64 KiB of text every 10 ms until the client goes away or the server closes. */
const ENDLESS: TestMcpTool = {
  name: "endless",
  raw: true,
  run: (_args, closing) => {
    const encoder = new TextEncoder();
    let started = false;
    return new ReadableStream<Uint8Array>({
      async pull(controller) {
        if (closing.aborted) return controller.close();
        if (!started) {
          started = true;
          return controller.enqueue(
            encoder.encode('{"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":"'),
          );
        }
        await new Promise((resolve) => setTimeout(resolve, 10));
        controller.enqueue(encoder.encode("x".repeat(64 * 1024)));
      },
    });
  },
};

function httpServer(url: string, overrides: Partial<McpServerWire> = {}): McpServerWire {
  return { id: "calc", url, timeoutMs: 5_000, ...overrides };
}

async function rejection(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (error) {
    return error as Error;
  }
  assert.fail("expected a rejection");
}

Deno.test({
  name: "MCP toolbox over streamable HTTP",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(t) {
    await using mcp = startMcpTestServer({
      tools: [ADD, STRUCTURED, FAILING, SLOW, BIG, MALFORMED, ENDLESS],
    });

    await t.step(
      "lists the tools once, calls them with the configured headers, returns text or structure",
      async () => {
        const box = await openMcpToolbox([
          httpServer(mcp.url, { headers: { Authorization: "Bearer s3cret" } }),
        ], {
          maxOutputBytes: 1_000,
        });
        try {
          assert.deepEqual(box.tools.map((tool) => tool.id), [
            "add",
            "forecast",
            "fails",
            "slow",
            "big",
            "malformed",
            "endless",
          ]);
          assert.deepEqual(box.tools[0], {
            id: "add",
            description: "Adds two numbers",
            inputSchema: ADD.inputSchema,
            mcpServer: "calc",
          });
          assert.equal(await box.call("add", { a: 2, b: 3 }, "task-1:2:0"), "5");
          assert.deepEqual(await box.call("forecast", { city: "Lisbon" }, "task-1:2:1"), {
            city: "Lisbon",
            tempC: 18,
          });
        } finally {
          await box.close();
        }
        assert.deepEqual(
          mcp.calls.map((call) => call.meta),
          [{ "compozy/idempotency-key": "task-1:2:0" }, { "compozy/idempotency-key": "task-1:2:1" }],
          "each call carries its idempotency key in _meta",
        );
        assert.deepEqual(mcp.requests.map((r) => r.method), [
          "initialize",
          "notifications/initialized",
          "tools/list",
          "tools/call",
          "tools/call",
        ]);
        assert.ok(mcp.requests.every((r) => r.headers.get("authorization") === "Bearer s3cret"));
      },
    );

    await t.step("selected tools only, in the agent's order", async () => {
      const box = await openMcpToolbox([httpServer(mcp.url, { tools: ["forecast", "add"] })], {
        maxOutputBytes: 1_000,
      });
      await box.close();
      assert.deepEqual(box.tools.map((tool) => tool.id), ["forecast", "add"]);
      assert.equal(box.has("slow"), false);
    });

    await t.step(
      "a failing, slow, too large or malformed call is a named failure for the model",
      async () => {
        const box = await openMcpToolbox([httpServer(mcp.url, { timeoutMs: 2_000 })], {
          maxOutputBytes: 1_000,
        });
        try {
          const cases: [string, string, RegExp][] = [
            ["fails", "mcp_tool_error", /the backend is down/],
            ["slow", "mcp_timeout", /no answer within 2000 ms/],
            ["big", "mcp_output_too_large", /5002 bytes of output, over the limit of 1000/],
            ["malformed", "mcp_result_invalid", /invalid result/],
          ];
          for (const [tool, code, message] of cases) {
            const failure = await rejection(box.call(tool, {}));
            assert.ok(failure instanceof McpCallFailure, `${tool}: ${failure}`);
            assert.equal(failure.code, code, failure.message);
            assert.match(failure.message, message);
          }
          // A result is read up to a bound, not whole before it is measured: one that never ends is too large,
          // not a wait for the call's time-out while the runtime's memory fills.
          const endless = await rejection(box.call("endless", {}));
          assert.equal((endless as McpCallFailure).code, "mcp_output_too_large", endless.message);
          assert.match(endless.message, /MCP tool 'endless' of server 'calc' sent a response over \d+ bytes/);
          assert.equal(await box.call("add", { a: 1, b: 1 }), "2", "the connection survives failed calls");
        } finally {
          await box.close();
        }
      },
    );

    await t.step(
      "a selected tool the server does not list, or a name taken twice, is agent_mcp_invalid",
      async () => {
        const missing = await rejection(
          openMcpToolbox([httpServer(mcp.url, { tools: ["add", "divide"] })], { maxOutputBytes: 1_000 }),
        );
        assert.ok(missing instanceof AgentFailure);
        assert.equal(missing.code, "agent_mcp_invalid");
        assert.equal(missing.retryable, false);
        assert.match(missing.message, /does not list tool 'divide' \(it lists: add, forecast/);

        const taken = await rejection(
          openMcpToolbox([httpServer(mcp.url, { tools: ["add"] })], {
            maxOutputBytes: 1_000,
            reserved: ["add"],
          }),
        );
        assert.equal((taken as AgentFailure).code, "agent_mcp_invalid");
        assert.match(taken.message, /'add', a name the agent's own tools already gives/);

        const twice = await rejection(openMcpToolbox([
          httpServer(mcp.url, { tools: ["add"] }),
          httpServer(mcp.url, { id: "other", tools: ["add"] }),
        ], { maxOutputBytes: 1_000 }));
        assert.match(twice.message, /a name MCP server 'calc' already gives/);
      },
    );
  },
});

Deno.test({
  name: "MCP servers that are down, slow or malformed fail the agent call by name, never hang",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(t) {
    await t.step("down: agent_mcp_unavailable, retryable", async () => {
      const closed = startMcpTestServer({ tools: [ADD] });
      await closed.close();
      const failure = await rejection(openMcpToolbox([httpServer(closed.url)], { maxOutputBytes: 1_000 }));
      assert.ok(failure instanceof AgentFailure);
      assert.equal(failure.code, "agent_mcp_unavailable");
      assert.equal(failure.retryable, true);
      assert.match(
        failure.message,
        /MCP server 'calc' \(http:\/\/127\.0\.0\.1:\d+\/mcp\): connecting failed/,
      );
    });

    await t.step("gone after listing: each call is mcp_unavailable for the model, at once", async () => {
      const gone = startMcpTestServer({ tools: [ADD] });
      const box = await openMcpToolbox([httpServer(gone.url, { timeoutMs: 60_000 })], {
        maxOutputBytes: 1_000,
      });
      try {
        await gone.close();
        for (let call = 1; call <= 2; call++) {
          // A refused connection fails the call; it does not wait for the 60 s time-out.
          const failure = await rejection(box.call("add", { a: 1, b: 2 }));
          assert.ok(failure instanceof McpCallFailure, String(failure));
          assert.equal(failure.code, "mcp_unavailable", failure.message);
          assert.match(failure.message, /MCP tool 'add' of server 'calc' could not be called/);
        }
      } finally {
        await box.close();
      }
    });

    await t.step("slow to list: agent_mcp_unavailable after the server's time-out", async () => {
      await using slow = startMcpTestServer({
        tools: [ADD],
        listReply: untilClosed,
      });
      const failure = await rejection(openMcpToolbox([httpServer(slow.url, { timeoutMs: 2_000 })], {
        maxOutputBytes: 1_000,
      }));
      assert.equal((failure as AgentFailure).code, "agent_mcp_unavailable");
      assert.match(failure.message, /listing tools failed: no answer within 2000 ms/);
    });

    await t.step("a malformed tool list: agent_mcp_invalid, not retryable", async () => {
      await using bad = startMcpTestServer({
        tools: [],
        listReply: () => ({ tools: [{ description: "no name" }] }),
      });
      const failure = await rejection(openMcpToolbox([httpServer(bad.url)], { maxOutputBytes: 1_000 }));
      assert.equal((failure as AgentFailure).code, "agent_mcp_invalid");
      assert.equal((failure as AgentFailure).retryable, false);
      assert.match(failure.message, /listing tools failed: the reply is not a valid MCP message/);
    });

    await t.step("a tool whose name no model takes is left out when all tools are taken", async () => {
      await using odd = startMcpTestServer({ tools: [ADD, { ...ADD, name: "files.read" }] });
      const box = await openMcpToolbox([httpServer(odd.url)], { maxOutputBytes: 1_000 });
      await box.close();
      assert.deepEqual(box.tools.map((tool) => tool.id), ["add"]);
    });

    await t.step("a command that does not exist: agent_mcp_unavailable", async () => {
      const failure = await rejection(openMcpToolbox(
        [{ id: "ghost", command: "/nonexistent/mcp-server", timeoutMs: 5_000 }],
        { maxOutputBytes: 1_000 },
      ));
      assert.equal((failure as AgentFailure).code, "agent_mcp_unavailable");
      assert.match(
        failure.message,
        /MCP server 'ghost' \(command \/nonexistent\/mcp-server\): connecting failed/,
      );
    });
  },
});

Deno.test({
  name:
    "a Deno script MCP server runs on stdio with its permissions and nothing more; a command is not confined",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "compozy-mcp-script-" });
    try {
      await Deno.mkdir(`${dir}/notes`);
      await Deno.writeTextFile(`${dir}/notes/groceries.txt`, "eggs, milk");
      await Deno.writeTextFile(`${dir}/secret.txt`, "do not read");
      const output: string[] = [];
      const box = await openMcpToolbox([{
        id: "notes",
        script: new URL("./fixtures/mcp_notes_server.ts", import.meta.url).pathname,
        args: [`${dir}/notes`],
        permissions: { read: [`${dir}/notes`] },
        cwd: dir,
        timeoutMs: 30_000,
      }], { maxOutputBytes: 1_000, onServerOutput: (server, line) => output.push(`${server}: ${line}`) });
      try {
        assert.deepEqual(box.tools.map((tool) => tool.id), ["read_note"]);
        assert.equal(await box.call("read_note", { name: "groceries" }), "eggs, milk");
        const denied = await rejection(box.call("read_note", { name: "../secret" }));
        assert.equal((denied as McpCallFailure).code, "mcp_tool_error");
        assert.match(denied.message, /NotCapable: Requires read access to ".*secret\.txt"/);
      } finally {
        await box.close();
      }
      assert.deepEqual(output, ["notes: notes server ready"], "stderr reaches the agent's logs");

      // With no permissions at all it reads nothing: Deno's node:child_process (the SDK spawns with it) runs
      // `deno run` with -A when its arguments hold no permission flag.
      const none = await openMcpToolbox([{
        id: "notes",
        script: new URL("./fixtures/mcp_notes_server.ts", import.meta.url).pathname,
        args: [`${dir}/notes`],
        cwd: dir,
        timeoutMs: 30_000,
      }], { maxOutputBytes: 1_000, onServerOutput: () => {} });
      try {
        const refused = await rejection(none.call("read_note", { name: "groceries" }));
        assert.equal((refused as McpCallFailure).code, "mcp_tool_error", refused.message);
        assert.match(refused.message, /NotCapable: Requires read access to ".*groceries\.txt"/);
      } finally {
        await none.close();
      }

      // The same server as a `command`: no sandbox, it reads what the runtime's user can.
      const unconfined = await openMcpToolbox([{
        id: "notes",
        command: Deno.execPath(),
        args: [
          "run",
          "--quiet",
          "--allow-read",
          new URL("./fixtures/mcp_notes_server.ts", import.meta.url).pathname,
          `${dir}/notes`,
        ],
        cwd: dir,
        timeoutMs: 30_000,
      }], { maxOutputBytes: 1_000, onServerOutput: () => {} });
      try {
        assert.equal(await unconfined.call("read_note", { name: "../secret" }), "do not read");
      } finally {
        await unconfined.close();
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
