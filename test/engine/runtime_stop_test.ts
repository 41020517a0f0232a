/**
 * A runtime that stops (Ctrl-C or SIGTERM of `compozy dev`, `compozy start --role runtime` stopped) leaves the
 * calls it was running unanswered, as a runtime that died would: the engine sends them again to the next
 * runtime, and the execution goes on (outside review E7: every such call was answered `tool_crashed`, "the
 * tool runner was closed", and its execution FAILED for good); an agent's tool call likewise, not recorded as the
 * tool's failure (A2). Real nats-server, engine, runtimes, sandboxes.
 */
import assert from "node:assert/strict";
import { startRuntime } from "../../pkg/runtime/service.ts";
import { startEngineHarness } from "../support/engine.ts";
import { until } from "../support/until.ts";

const project = {
  "compozy.yaml": "name: stopping\nworkflows:\n  - source: ./wf.yaml\n",
  "wf.yaml": `id: slow
tools:
  - id: nap
    execute: ./nap.ts
tasks:
  - id: a
    use: tool(id=nap)
    with: { ms: 1500 }
`,
  "nap.ts": "export default async (input: { ms: number }) => {\n" +
    "  await new Promise((r) => setTimeout(r, input.ms));\n  return { slept: input.ms };\n};\n",
};

Deno.test({
  name: "E7: calls running when a runtime stops are sent again to the next runtime, not failed",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const h = await startEngineHarness(project);
    const first = startRuntime({ nc: h.nc, bus: h.bus });
    let second: ReturnType<typeof startRuntime> | undefined;
    try {
      const ids = await Promise.all(
        [1, 2, 3].map(async () => (await h.engine.client.trigger("slow", {})).execId),
      );
      await until(() => Promise.resolve(first.runner.stats().busy === 3));
      await first.stop();
      second = startRuntime({ nc: h.nc, bus: h.bus });
      for (const id of ids) {
        const state = await h.engine.client.waitForEnd(id, 60_000);
        assert.equal(state.status, "SUCCESS", JSON.stringify(state.error));
        assert.deepEqual(state.output, { slept: 1500 });
        const types = (await h.engine.client.events(id)).map((e) => e.type);
        assert.ok(!types.includes("tool.failed"), types.join(", "));
      }
    } finally {
      await second?.stop();
      await h.close();
    }
  },
});

const agentProject = {
  "compozy.yaml": `name: stopping-agent
workflows:
  - source: ./wf.yaml
models:
  - id: scripted
    provider: mock
    model: scripted
    mock:
      replies:
        dig:
          - { tool_calls: [{ tool: nap, input: { ms: 1500 } }] }
          - { text: "dug" }
`,
  "wf.yaml": `id: dig
tools:
  - id: nap
    execute: ./nap.ts
agents:
  - id: digger
    config: { $model: scripted }
    instructions: Dig.
    tools: [nap]
    actions: [{ id: dig, prompt: dig }]
tasks:
  - id: a
    use: agent(id=digger)
    action: dig
`,
  "nap.ts": project["nap.ts"],
};

Deno.test({
  name:
    "A2: an agent's tool call running when its runtime stops is made again by the next runtime, not recorded failed",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const h = await startEngineHarness(agentProject);
    const first = startRuntime({ nc: h.nc, bus: h.bus });
    let second: ReturnType<typeof startRuntime> | undefined;
    try {
      const { execId } = await h.engine.client.trigger("dig", {});
      await until(() => Promise.resolve(first.runner.stats().busy === 1));
      await first.stop();
      second = startRuntime({ nc: h.nc, bus: h.bus });
      const state = await h.engine.client.waitForEnd(execId, 60_000);
      assert.equal(state.status, "SUCCESS", JSON.stringify(state.error));
      const ended = (await h.engine.client.events(execId)).filter((e) => e.type === "agent.tool_call_ended");
      // Before the fix: one tool_call_ended carrying tool_crashed ("the tool runner was closed"), shown to the model.
      assert.equal(ended.length, 1, JSON.stringify(ended.map((e) => e.data)));
      assert.doesNotMatch(JSON.stringify(ended[0].data), /tool_crashed|closed/);
    } finally {
      await second?.stop();
      await h.close();
    }
  },
});

/** A stdio MCP server (newline-delimited JSON-RPC) whose one tool never answers. */
const HANGING_MCP_SERVER = `const encoder = new TextEncoder();
const send = (m: unknown) => Deno.stdout.write(encoder.encode(JSON.stringify(m) + "\\n"));
let buffer = "";
for await (const chunk of Deno.stdin.readable.pipeThrough(new TextDecoderStream())) {
  buffer += chunk;
  let end;
  while ((end = buffer.indexOf("\\n")) >= 0) {
    const m = JSON.parse(buffer.slice(0, end));
    buffer = buffer.slice(end + 1);
    if (m.method === "initialize") {
      await send({ jsonrpc: "2.0", id: m.id, result: { protocolVersion: m.params.protocolVersion,
        capabilities: { tools: {} }, serverInfo: { name: "hang", version: "1" } } });
    } else if (m.method === "tools/list") {
      await send({ jsonrpc: "2.0", id: m.id, result: { tools: [{ name: "wait", description: "Waits",
        inputSchema: { type: "object" } }] } });
    }
    // tools/call: never answered, and stdin's end is ignored by nothing but this loop's end.
  }
}
// Stays alive after its stdin closed, as a careless server would: only a kill ends it.
setInterval(() => {}, 1_000);
`;

async function processesRunning(pattern: string): Promise<number> {
  const { stdout } = await new Deno.Command("pgrep", { args: ["-f", pattern], stdout: "piped" }).output();
  return new TextDecoder().decode(stdout).trim().split("\n").filter(Boolean).length;
}

Deno.test({
  name: "A4: a stdio MCP server of an agent call running when its runtime stops does not outlive the runtime",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const marker = `hang-${crypto.randomUUID()}`;
    const files = {
      "compozy.yaml": `name: stopping-mcp
workflows:
  - source: ./wf.yaml
models:
  - id: scripted
    provider: mock
    model: scripted
    mock:
      replies:
        ask: [{ tool_calls: [{ tool: wait }] }, { text: "never" }]
mcp:
  - id: hang
    script: ./mcp/${marker}.ts
    timeout: 10m
`,
      "wf.yaml": `id: ask
agents:
  - id: asker
    config: { $model: scripted }
    instructions: Ask.
    tools: ["mcp(id=hang)"]
    actions: [{ id: ask, prompt: ask }]
tasks:
  - id: a
    use: agent(id=asker)
    action: ask
`,
      [`mcp/${marker}.ts`]: HANGING_MCP_SERVER,
    };
    const h = await startEngineHarness(files);
    const runtime = startRuntime({ nc: h.nc, bus: h.bus });
    try {
      await h.engine.client.trigger("ask", {});
      await until(async () => (await processesRunning(marker)) === 1);
      // The call is under way once the model's reply asking for the tool is recorded.
      await new Promise((r) => setTimeout(r, 1_000));
      await runtime.stop();
      // Before the fix the server lived on after the runtime had stopped (adopted by PID 1 once it exited).
      assert.equal(await processesRunning(marker), 0);
    } finally {
      await h.close();
    }
  },
});
