/**
 * The examples run end to end: a real engine, the real runtime with its sandboxed tool processes, and a
 * real nats-server. The agent runs against a scripted OpenAI-compatible server on loopback.
 */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { runInit } from "../../cli/commands/init.ts";
import { startRuntime } from "../../pkg/runtime/service.ts";
import { startMockOpenAI } from "../support/mock_llm/mod.ts";
import { type EngineHarness, startEngineHarness, writeProject } from "../support/engine.ts";

const examples = fileURLToPath(new URL("../../examples/", import.meta.url));

async function withStack(
  project: Record<string, string> | string,
  fn: (h: EngineHarness) => Promise<void>,
): Promise<void> {
  const h = await startEngineHarness(project);
  const runtime = startRuntime({ nc: h.nc, bus: h.bus });
  try {
    await fn(h);
  } finally {
    await runtime.stop();
    await h.close();
  }
}

Deno.test({
  name: "examples run end to end through the sandboxed runtime",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(t) {
    await t.step("hello: three TypeScript tools in a row", async () => {
      await withStack(`${examples}hello`, async (h) => {
        const { execId } = await h.engine.client.trigger("hello", { name: "Ada" });
        const state = await h.engine.client.waitForEnd(execId, 30_000);
        assert.equal(state.status, "SUCCESS", JSON.stringify(state.error));
        const output = state.output as { greeting: string; summary: string };
        assert.equal(output.greeting, "Hello, Ada!");
        assert.match(output.summary, /HELLO, ADA!/);
      });
    });

    await t.step("pipeline: collection, parallel, router, aggregate", async () => {
      await withStack(`${examples}pipeline`, async (h) => {
        const { execId } = await h.engine.client.trigger("pipeline", {
          texts: ["  hello   world ", "", "one two three"],
          format: "text",
        });
        const state = await h.engine.client.waitForEnd(execId, 30_000);
        assert.equal(state.status, "SUCCESS", JSON.stringify(state.error));
        assert.match(JSON.stringify(state.output), /2 texts, 5 words/);
      });
    });

    await t.step("approval: a request waits for the decide workflow's signal", async () => {
      await withStack(`${examples}approval`, async (h) => {
        const { execId } = await h.engine.client.trigger("request", { title: "laptop", amount: 1200 });
        let state = await h.engine.client.get(execId);
        const deadline = Date.now() + 20_000;
        while (state?.status !== "WAITING" && Date.now() < deadline) {
          await new Promise((r) => setTimeout(r, 50));
          state = await h.engine.client.get(execId);
        }
        assert.equal(state?.status, "WAITING");
        const ticket = (state!.tasks.find((x) => x.task_id === "file")!.output as { ticket: string }).ticket;
        const decide = await h.engine.client.trigger("decide", { ticket, decision: "approve" });
        const decided = await h.engine.client.waitForEnd(decide.execId, 5_000);
        console.log(
          JSON.stringify(decided),
          (await h.engine.client.events(decide.execId)).map((e) => e.type),
        );
        assert.equal(decided.status, "SUCCESS");
        const done = await h.engine.client.waitForEnd(execId, 20_000);
        assert.equal(done.status, "SUCCESS", JSON.stringify(done.error));
        assert.match(JSON.stringify(done.output), /approved/);
      });
    });

    await t.step(
      "weather-agent on its offline (mock) model: the scripted tool call runs in the sandbox",
      async () => {
        const dir = await Deno.makeTempDir({ prefix: "compozy-weather-" });
        try {
          await copyDir(`${examples}weather-agent`, dir);
          const workflow = `${dir}/workflows/weather.yaml`;
          const text = await Deno.readTextFile(workflow);
          await Deno.writeTextFile(workflow, text.replace("$model: default", "$model: offline"));
          await withStack(dir, async (h) => {
            const { execId } = await h.engine.client.trigger("weather", { city: "Lisbon" });
            const state = await h.engine.client.waitForEnd(execId, 30_000);
            assert.equal(state.status, "SUCCESS", JSON.stringify(state.error));
            assert.deepEqual(state.output, { advice: "Scripted advice for Lisbon: take a light jacket." });
            const advise = state.tasks.find((task) => task.task_id === "advise")!;
            assert.ok(advise.usage!.total_tokens > 0, "the mock reports usage");
            const events = (await h.engine.client.events(execId)).map((e) => e.type);
            assert.ok(events.some((type) => type.startsWith("tool.")), `agent tool call in ${events}`);
          });
        } finally {
          await Deno.remove(dir, { recursive: true });
        }
      },
    );

    await t.step(
      "support-agent offline: an MCP script server's tool, memory, budgets and a priced mock model",
      async () => {
        await withStack(`${examples}support-agent`, async (h) => {
          const input = { user: "ada", order: "A-100", question: "Where is my order?" };
          const { execId } = await h.engine.client.trigger("support", input);
          const state = await h.engine.client.waitForEnd(execId, 60_000);
          assert.equal(state.status, "SUCCESS", JSON.stringify(state.error));
          assert.deepEqual(state.output, { answer: "Order A-100 is on its way, ada." });
          const usage = state.tasks.find((task) => task.task_id === "answer")!.usage!;
          assert.ok(usage.total_tokens > 0 && usage.cost! > 0, JSON.stringify(usage));
          assert.deepEqual(state.usage, usage, "the execution's usage is its one agent task's");
          const ended = (await h.engine.client.events(execId)).filter((e) =>
            e.type === "agent.tool_call_ended"
          );
          const call = ended[0]?.data as { call?: { toolId?: string; mcpServer?: string }; output?: unknown };
          assert.deepEqual(call.call?.toolId, "lookup_order");
          assert.equal(call.call?.mcpServer, "orders");
          assert.deepEqual(call.output, { status: "shipped", eta: "tomorrow" });
        });
      },
    );

    await t.step("compozy init's project runs its agent on the mock provider with no key", async () => {
      const dir = await Deno.makeTempDir({ prefix: "compozy-init-" });
      try {
        const log = console.log;
        console.log = () => {};
        try {
          await runInit({ cwd: dir });
        } finally {
          console.log = log;
        }
        await withStack(dir, async (h) => {
          const { execId } = await h.engine.client.trigger("greeter", { name: "Ada" });
          const state = await h.engine.client.waitForEnd(execId, 30_000);
          assert.equal(state.status, "SUCCESS", JSON.stringify(state.error));
          assert.deepEqual(state.output, {
            greeting: "Hello, Ada!",
            poem: "A scripted poem for Ada: set OPENAI_API_KEY and use $model: openai for a real one.",
          });
        });
      } finally {
        await Deno.remove(dir, { recursive: true });
      }
    });

    await t.step("approval: without a decision the request is reminded, then expires", async () => {
      // The example as shipped, with its hour and ten minutes shortened: the time-out path end to end.
      const files: Record<string, string> = {};
      for (const path of ["compozy.yaml", "workflows/request.yaml", "workflows/decide.yaml"]) {
        files[path] = (await Deno.readTextFile(`${examples}approval/${path}`))
          .replace("timeout: 1h", "timeout: 300ms").replace("duration: 10m", "duration: 300ms");
      }
      for (const tool of ["file_request.ts", "notify.ts"]) {
        files[`workflows/tools/${tool}`] = await Deno.readTextFile(
          `${examples}approval/workflows/tools/${tool}`,
        );
      }
      assert.match(files["workflows/request.yaml"], /timeout: 300ms/);
      const dir = await writeProject(files);
      try {
        await withStack(dir, async (h) => {
          const { execId } = await h.engine.client.trigger("request", { title: "laptop", amount: 1200 });
          const done = await h.engine.client.waitForEnd(execId, 30_000);
          assert.equal(done.status, "SUCCESS", JSON.stringify(done.error));
          assert.match(JSON.stringify(done.output), /expired/);
          const remind = done.tasks.find((x) => x.task_id === "remind");
          assert.match(JSON.stringify(remind?.output), /had no decision/);
        });
      } finally {
        await Deno.remove(dir, { recursive: true });
      }
    });

    await t.step("each tool call of one agent loop gets its own stable idempotency key", async () => {
      await using llm = startMockOpenAI();
      llm.enqueue(
        {
          type: "tool_calls",
          calls: [{ name: "record", arguments: { n: 1 } }, { name: "record", arguments: { n: 2 } }],
        },
        { type: "json", value: { done: true } },
      );
      const dir = await writeProject({
        "compozy.yaml": `name: agents
workflows: [{ source: ./wf.yaml }]
models:
  - { id: default, provider: openai-compatible, model: m, api_key: k, base_url: ${llm.baseUrl} }
`,
        "wf.yaml": `id: keys
tools:
  - id: record
    execute: ./record.ts
agents:
  - id: a
    config: { $model: default }
    instructions: Call the tool twice.
    tools: [record]
    actions:
      - id: go
        prompt: go
        output: { type: object, properties: { done: { type: boolean } } }
tasks:
  - id: go
    use: agent(id=a)
    action: go
`,
        "record.ts":
          "export default (input: { n: number }, ctx: { taskExecId: string }) => ({ n: input.n, key: ctx.taskExecId });\n",
      });
      try {
        await withStack(dir, async (h) => {
          const { execId } = await h.engine.client.trigger("keys", {});
          const state = await h.engine.client.waitForEnd(execId, 30_000);
          assert.equal(state.status, "SUCCESS", JSON.stringify(state.error));
          const taskExecId = state.tasks[0].exec_id;
          const keys = [...JSON.stringify(llm.requests[1].body).matchAll(/key\\*":\\*"([^"\\]+)/g)]
            .map((m) => m[1]);
          assert.deepEqual(keys, [`${taskExecId}:1:0`, `${taskExecId}:1:1`]);
        });
      } finally {
        await Deno.remove(dir, { recursive: true });
      }
    });

    await t.step("a cancel stops an agent's model request in the runtime", async () => {
      await using llm = startMockOpenAI();
      llm.enqueue({ type: "text", text: "too late", delayMs: 8_000 });
      const dir = await writeProject({
        "compozy.yaml": `name: agents
workflows: [{ source: ./wf.yaml }]
models:
  - { id: default, provider: openai-compatible, model: m, api_key: k, base_url: ${llm.baseUrl} }
`,
        "wf.yaml": `id: slow
agents:
  - id: a
    config: { $model: default }
    instructions: Take your time.
    actions:
      - id: go
        prompt: go
tasks:
  - id: go
    use: agent(id=a)
    action: go
`,
      });
      try {
        await withStack(dir, async (h) => {
          const ended: string[] = [];
          const sub = h.bus.subscribe("compozy.*.agent.evts.*.*", (_m, subject) => {
            if (!subject.endsWith(".started")) ended.push(subject.split(".").at(-1)!);
          });
          try {
            const { execId } = await h.engine.client.trigger("slow", {});
            const deadline = Date.now() + 10_000;
            while (llm.requests.length === 0 && Date.now() < deadline) {
              await new Promise((r) => setTimeout(r, 20));
            }
            await h.engine.client.cancel(execId, "stop");
            assert.equal((await h.engine.client.waitForEnd(execId, 5_000)).status, "CANCELED");
            // The loop ends without the model's answer: failed (aborted), never a success 8 s later.
            while (ended.length === 0 && Date.now() < deadline + 10_000) {
              await new Promise((r) => setTimeout(r, 20));
            }
            assert.deepEqual(ended, ["failed"]);
          } finally {
            sub.unsubscribe();
          }
        });
      } finally {
        await Deno.remove(dir, { recursive: true });
      }
    });

    await t.step("an agent calls its tool in the sandbox and answers with structured output", async () => {
      await using llm = startMockOpenAI();
      llm.enqueue(
        { type: "tool_calls", calls: [{ name: "weather_tool", arguments: { city: "Lisbon" } }] },
        { type: "json", value: { advice: "Light jacket" }, usage: { inputTokens: 40, outputTokens: 6 } },
      );
      const dir = await writeProject({
        "compozy.yaml": `name: agents
workflows: [{ source: ./wf.yaml }]
models:
  - id: default
    provider: openai-compatible
    model: test-model
    api_key: test-key
    base_url: ${llm.baseUrl}
`,
        "wf.yaml": `id: advise
tools:
  - id: weather_tool
    execute: ./weather.ts
    input: { type: object, properties: { city: { type: string } }, required: [city] }
agents:
  - id: forecaster
    config: { $model: default }
    instructions: Be brief.
    tools: [weather_tool]
    actions:
      - id: advise
        prompt: "What to wear in {{ .input.city }}?"
        output: { type: object, properties: { advice: { type: string } }, required: [advice] }
tasks:
  - id: advise
    use: agent(id=forecaster)
    action: advise
    with: { city: "{{ .workflow.input.city }}" }
`,
        "weather.ts": "export default (input: { city: string }) => ({ city: input.city, celsius: 14 });\n",
      });
      try {
        await withStack(dir, async (h) => {
          const { execId } = await h.engine.client.trigger("advise", { city: "Lisbon" });
          const state = await h.engine.client.waitForEnd(execId, 30_000);
          assert.equal(state.status, "SUCCESS", JSON.stringify(state.error));
          assert.deepEqual(state.output, { advice: "Light jacket" });
          // Token usage of both model calls goes into the task's state, not its output.
          assert.ok(state.tasks[0].usage!.output_tokens >= 6);
          assert.ok(state.tasks[0].usage!.total_tokens > state.tasks[0].usage!.output_tokens);
          const toolResult = JSON.stringify(llm.requests[1].body);
          assert.match(toolResult, /celsius/);
        });
      } finally {
        await Deno.remove(dir, { recursive: true });
      }
    });
  },
});

async function copyDir(from: string, to: string): Promise<void> {
  for await (const entry of Deno.readDir(from)) {
    if (entry.name === ".compozy" || entry.name === ".env") continue;
    if (entry.isDirectory) {
      await Deno.mkdir(`${to}/${entry.name}`, { recursive: true });
      await copyDir(`${from}/${entry.name}`, `${to}/${entry.name}`);
    } else await Deno.copyFile(`${from}/${entry.name}`, `${to}/${entry.name}`);
  }
}
