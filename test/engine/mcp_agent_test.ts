/**
 * MCP tools end to end: an engine, the real runtime, a scripted OpenAI-compatible model and two MCP servers
 * the test starts (streamable HTTP on loopback, and a Deno script on stdio that the runtime runs with the
 * permissions of its `mcp:` entry). The model's tool calls reach the MCP servers and their results reach the
 * model; a server that is down fails the task with a named, retryable failure.
 */
import assert from "node:assert/strict";
import { startRuntime } from "../../pkg/runtime/service.ts";
import { startMcpSseTestServer, startMcpTestServer } from "../support/mcp_server.ts";
import { startMockOpenAI } from "../support/mock_llm/mod.ts";
import { startEngineHarness, writeProject } from "../support/engine.ts";

const fixture = (name: string) => new URL(`../runtime_agent/fixtures/${name}`, import.meta.url).pathname;

function project(llmUrl: string, calcUrl: string): Record<string, string> {
  return {
    "compozy.yaml": `name: mcp-e2e
workflows: [{ source: ./wf.yaml }]
env: { CALC_TOKEN: s3cret }
models:
  - { id: default, provider: openai-compatible, model: m, api_key: k, base_url: ${llmUrl} }
mcp:
  - id: calc
    url: ${calcUrl}
    headers: { Authorization: "Bearer {{ .env.CALC_TOKEN }}" }
    timeout: 10s
  - id: notes
    script: ./mcp/notes.ts
    args: [./notes]
    permissions: { read: [./notes] }
`,
    "wf.yaml": `id: ask
agents:
  - id: helper
    config: { $model: default }
    instructions: Use your tools.
    tools: ["mcp(id=calc)", "mcp(id=notes, tool=read_note)"]
    actions:
      - id: answer
        prompt: "{{ .input.question }}"
tasks:
  - id: answer
    use: agent(id=helper)
    action: answer
    with: { question: "{{ .workflow.input.question }}" }
`,
    "notes/groceries.txt": "eggs, milk",
  };
}

Deno.test({
  name: "an agent calls MCP tools over HTTP and stdio through the engine and the runtime",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(t) {
    await using llm = startMockOpenAI();
    await using calc = startMcpTestServer({
      tools: [{
        name: "add",
        description: "Adds two numbers",
        inputSchema: { type: "object", properties: { a: { type: "number" }, b: { type: "number" } } },
        run: ({ a, b }) => ({ content: [{ type: "text", text: String(Number(a) + Number(b)) }] }),
      }],
    });
    const files = project(llm.baseUrl, calc.url);
    const dir = await writeProject(files);
    await Deno.mkdir(`${dir}/mcp`);
    await Deno.copyFile(fixture("mcp_notes_server.ts"), `${dir}/mcp/notes.ts`);
    await Deno.copyFile(fixture("plain_mcp_stdio.ts"), `${dir}/mcp/plain_mcp_stdio.ts`);
    const h = await startEngineHarness(dir);
    const runtime = startRuntime({ nc: h.nc, bus: h.bus });
    try {
      await t.step("the model's calls reach both servers and their results reach the model", async () => {
        llm.enqueue(
          {
            type: "tool_calls",
            calls: [
              { id: "c1", name: "add", arguments: { a: 2, b: 3 } },
              { id: "c2", name: "read_note", arguments: { name: "groceries" } },
            ],
          },
          { type: "text", text: "5 eggs and milk" },
        );
        const { execId } = await h.engine.client.trigger("ask", { question: "What do I buy?" });
        const state = await h.engine.client.waitForEnd(execId, 60_000);
        assert.equal(state.status, "SUCCESS", JSON.stringify(state.error));
        assert.deepEqual(state.output, { text: "5 eggs and milk" });

        const offered = llm.requests[0].body.tools.map((tool: { function: { name: string } }) =>
          tool.function.name
        );
        assert.deepEqual(offered, ["add", "read_note"]);
        // The call carries its idempotency key, as a sandbox tool's ctx.taskExecId: task exec id, turn 1, call 0.
        const recorded = (await h.engine.client.events(execId))
          .filter((e) => e.type === "agent.tool_call_ended")
          .map((e) => (e.data as { call: { toolId: string; idempotencyKey: string } }).call);
        const addKey = recorded.find((call) => call.toolId === "add")?.idempotencyKey;
        assert.match(addKey ?? "", /^[0-9a-f-]{36}:1:0$/);
        assert.deepEqual(calc.calls, [{
          name: "add",
          args: { a: 2, b: 3 },
          meta: { "compozy/idempotency-key": addKey },
        }]);
        assert.ok(calc.requests.every((r) => r.headers.get("authorization") === "Bearer s3cret"));
        const results = llm.requests[1].body.messages.filter((m: { role: string }) => m.role === "tool");
        assert.deepEqual(
          results.map((m: { tool_call_id: string; content: string }) => [m.tool_call_id, m.content]),
          [["c1", "5"], ["c2", "eggs, milk"]],
        );
        // Each call's end is in the history like a sandbox tool's, naming its server.
        const ended = (await h.engine.client.events(execId))
          .filter((e) => e.type === "agent.tool_call_ended")
          .map((e) => (e.data as { call: { toolId: string; mcpServer?: string } }).call);
        assert.deepEqual(
          ended.map((call) => [call.toolId, call.mcpServer]).sort(),
          [["add", "calc"], ["read_note", "notes"]],
        );
      });

      await t.step("a failed MCP call is recorded with its code and goes back to the model", async () => {
        llm.enqueue(
          { type: "tool_calls", calls: [{ id: "c3", name: "read_note", arguments: { name: "missing" } }] },
          { type: "text", text: "There is no such note." },
        );
        const { execId } = await h.engine.client.trigger("ask", { question: "What is in 'missing'?" });
        const state = await h.engine.client.waitForEnd(execId, 60_000);
        assert.equal(state.status, "SUCCESS", JSON.stringify(state.error));
        const ended = (await h.engine.client.events(execId)).find((e) => e.type === "agent.tool_call_ended");
        const data = ended?.data as {
          call: { mcpServer?: string };
          error?: { code: string; message: string };
        };
        assert.equal(data.call.mcpServer, "notes");
        assert.equal(data.error?.code, "mcp_tool_error", JSON.stringify(data));
        const results = llm.requests.at(-1)!.body.messages.filter((m: { role: string }) => m.role === "tool");
        assert.match(results.at(-1).content, /NotFound|No such file/);
      });

      await t.step("a server that is down fails the task with agent_mcp_unavailable", async () => {
        await calc.close();
        const before = llm.requests.length;
        const { execId } = await h.engine.client.trigger("ask", { question: "Again?" });
        const state = await h.engine.client.waitForEnd(execId, 60_000);
        assert.equal(state.status, "FAILED");
        assert.equal(state.error?.code, "agent_mcp_unavailable", JSON.stringify(state.error));
        assert.match(
          state.error?.message ?? "",
          /MCP server 'calc' \(http:\/\/127\.0\.0\.1:\d+\/mcp\): connecting failed/,
        );
        assert.equal(llm.requests.length, before, "the model is not asked when a server is unusable");
      });
    } finally {
      await runtime.stop();
      await h.close();
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "an agent calls the tools of an MCP server declared with transport: sse through the engine",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await using llm = startMockOpenAI();
    await using sse = await startMcpSseTestServer({
      tools: [{ name: "ping", run: () => ({ content: [{ type: "text", text: "pong" }] }) }],
    });
    const dir = await writeProject({
      "compozy.yaml": `name: mcp-sse
workflows: [{ source: ./wf.yaml }]
env: { PING_TOKEN: s3cret }
models:
  - { id: default, provider: openai-compatible, model: m, api_key: k, base_url: ${llm.baseUrl} }
mcp:
  - { id: pinger, url: "${sse.url}", transport: sse, headers: { Authorization: "Bearer {{ .env.PING_TOKEN }}" } }
`,
      "wf.yaml": `id: ping
agents:
  - id: helper
    config: { $model: default }
    instructions: Ping.
    tools: ["mcp(id=pinger)"]
    actions: [{ id: ping, prompt: Ping it. }]
tasks:
  - { id: ping, use: agent(id=helper), action: ping }
`,
    });
    const h = await startEngineHarness(dir);
    const runtime = startRuntime({ nc: h.nc, bus: h.bus });
    try {
      llm.enqueue(
        { type: "tool_calls", calls: [{ id: "p1", name: "ping", arguments: {} }] },
        { type: "text", text: "It said pong." },
      );
      const { execId } = await h.engine.client.trigger("ping", {});
      const state = await h.engine.client.waitForEnd(execId, 60_000);
      assert.equal(state.status, "SUCCESS", JSON.stringify(state.error));
      assert.deepEqual(sse.calls.map((call) => call.name), ["ping"]);
      assert.ok(
        sse.authorizations.every((header) => header === "Bearer s3cret"),
        JSON.stringify(sse.authorizations),
      );
      const results = llm.requests[1].body.messages.filter((m: { role: string }) => m.role === "tool");
      assert.deepEqual(results.map((m: { content: string }) => m.content), ["pong"]);
    } finally {
      await runtime.stop();
      await h.close();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
