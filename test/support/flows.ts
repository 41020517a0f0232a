/**
 * Helpers for flow tests: a project of one workflow (`main`) with scripted tools, an engine on a real
 * nats-server, and waits on an execution's status.
 */
import { type EngineHarness, scriptedRuntime, startEngineHarness } from "./engine.ts";

const tool = (id: string) => `  - id: ${id}\n    execute: ./t.ts\n`;

export const FLOW_TOOLS = ["echo", "flaky", "boom", "slow"];

/** A project whose workflow `main` is `workflow` (its tasks), with the scripted tools and a `child`. */
export function projectWith(workflow: string, tools = FLOW_TOOLS): Record<string, string> {
  return {
    "compozy.yaml": "name: flows\nworkflows:\n  - source: ./wf.yaml\n  - source: ./child.yaml\n",
    "wf.yaml": `id: main\ntools:\n${tools.map(tool).join("")}${workflow}`,
    "child.yaml": `id: child\ntools:\n${
      tool("echo")
    }tasks:\n  - id: only\n    use: tool(id=echo)\n    with: { v: "{{ .workflow.input.v }}" }\n`,
    "t.ts": "export default (input: unknown) => input;\n",
  };
}

/**
 * Runs `fn` against an engine for `files` (or the workflow's tasks) with the scripted tools: `echo` returns its
 * input, `flaky` fails retryably until its third call, `boom` always fails, `slow` returns after `ms`.
 */
export async function withEngine(
  workflow: string | Record<string, string>,
  fn: (h: EngineHarness, calls: string[]) => Promise<void>,
): Promise<void> {
  const h = await startEngineHarness(typeof workflow === "string" ? projectWith(workflow) : workflow);
  const calls: string[] = [];
  let flaky = 0;
  const runtime = scriptedRuntime(h.bus, {
    echo: (input, call) => {
      calls.push(call.task!.id);
      return input;
    },
    flaky: () => {
      if (++flaky < 3) throw Object.assign(new Error(`flaky ${flaky}`), { retryable: true });
      return { attempts: flaky };
    },
    boom: () => {
      throw new Error("boom");
    },
    slow: async (input) => {
      await new Promise((r) => setTimeout(r, Number(input.ms ?? 200)));
      return input;
    },
  });
  try {
    await fn(h, calls);
  } finally {
    runtime.stop();
    await h.close();
  }
}

/** Triggers `main` and waits for its end. */
export async function run(h: EngineHarness, input: unknown = {}, timeoutMs = 15_000) {
  const { execId } = await h.engine.client.trigger("main", input);
  return await h.engine.client.waitForEnd(execId, timeoutMs);
}

export async function waitForChild(h: EngineHarness, workflowId: string) {
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    const page = await h.engine.client.list({ workflowId });
    if (page.items.length) return page.items[0];
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`no execution of ${workflowId}`);
}

export async function waitForStatus(h: EngineHarness, execId: string, status: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    if ((await h.engine.client.get(execId))?.status === status) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`execution ${execId} did not reach ${status}`);
}
