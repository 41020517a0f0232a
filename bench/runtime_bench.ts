/**
 * What a tool call costs through ToolRunner, from `run()` to its result, with a tool that does nothing:
 * - warm: the sandbox process of the tool is already running (the usual case), sequential calls;
 * - cold: no process for the tool exists, so the call spawns `deno run`, loads the module in the sandbox's
 *   worker and then runs (the module graph check is cached, as it is after a tool's first call);
 * - first call: a cold call that also checks the module graph with `deno info`;
 * - floors, for comparison: a bare `deno` process until its first output byte, and the same process
 *   creating one empty worker (what a sandbox's host thread does before it can load the tool).
 *
 * Run: `deno run -A bench/runtime_bench.ts`
 *
 * @module
 */
import { join } from "node:path";
import { type ToolCall, ToolRunner } from "../pkg/runtime/tool_runner.ts";
import { percentile, roundMs } from "./_stats.ts";
import { formatTable } from "./_table.ts";

const WARM_CALLS = 1_000;
const WARM_UP = 50;
const COLD_SPAWNS = 20;

const CONTEXT = { workflowId: "wf", workflowExecId: "we", taskId: "t", taskExecId: "te", attempt: 1 };
const SCHEMA = {
  type: "object",
  properties: { city: { type: "string" }, days: { type: "integer", minimum: 1 } },
  required: ["city"],
};

/** p50 and p99 of warm and cold tool calls, in milliseconds. */
export async function benchRuntime(): Promise<Array<Record<string, string | number>>> {
  const dir = await Deno.makeTempDir({ prefix: "compozy-bench-" });
  try {
    const echo = join(dir, "echo.ts");
    await Deno.writeTextFile(echo, `export default (input: unknown) => input;`);
    const call = (overrides: Partial<ToolCall> = {}): ToolCall => ({
      toolId: "echo",
      executePath: echo,
      input: { city: "Lisbon", days: 3 },
      timeoutMs: 10_000,
      context: CONTEXT,
      ...overrides,
    });
    return [
      await firstCall(dir),
      await warm("warm call, no schemas", call()),
      await warm("warm call, input and output schemas", call({ inputSchema: SCHEMA, outputSchema: SCHEMA })),
      await warm("warm call, 64 KiB input and output", call({ input: { blob: "x".repeat(64 * 1024) } })),
      await cold(call()),
      await floor("floor: deno process start", "Deno.stdout.writeSync(new Uint8Array(1))"),
      await floor(
        "floor: deno process start + empty worker",
        `const w = new Worker("data:text/javascript,postMessage(1)", { type: "module" });
         w.onmessage = () => { Deno.stdout.writeSync(new Uint8Array(1)); Deno.exit(0); };`,
      ),
    ];
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

async function warm(name: string, call: ToolCall): Promise<Record<string, string | number>> {
  const runner = new ToolRunner();
  try {
    const samples: number[] = [];
    for (let i = 0; i < WARM_UP + WARM_CALLS; i++) {
      const started = performance.now();
      await expectOk(runner.run(call));
      if (i >= WARM_UP) samples.push(performance.now() - started);
    }
    if (runner.stats().spawned !== 1) {
      throw new Error(`warm calls spawned ${runner.stats().spawned} processes`);
    }
    return row(name, samples);
  } finally {
    await runner.close();
  }
}

/** Every call spawns: no process is kept warm (`maxWarmPerKey: 0`). */
async function cold(call: ToolCall): Promise<Record<string, string | number>> {
  const runner = new ToolRunner({ maxWarmPerKey: 0 });
  try {
    await expectOk(runner.run(call)); // checks the module graph once
    const samples: number[] = [];
    for (let i = 0; i < COLD_SPAWNS; i++) {
      const started = performance.now();
      await expectOk(runner.run(call));
      samples.push(performance.now() - started);
    }
    return row("cold call (spawn, load, call)", samples);
  } finally {
    await runner.close();
  }
}

/** Cold calls of tools never seen before: `deno info` checks each module graph first. */
async function firstCall(dir: string): Promise<Record<string, string | number>> {
  const runner = new ToolRunner();
  try {
    const samples: number[] = [];
    for (let i = 0; i < COLD_SPAWNS; i++) {
      const path = join(dir, `fresh_${i}.ts`);
      await Deno.writeTextFile(path, `export default (input: unknown) => input;`);
      const started = performance.now();
      await expectOk(
        runner.run({ toolId: "fresh", executePath: path, input: i, timeoutMs: 10_000, context: CONTEXT }),
      );
      samples.push(performance.now() - started);
    }
    return row("first call of a tool (graph check, spawn, load, call)", samples);
  } finally {
    await runner.close();
  }
}

/** Spawn to first stdout byte of `deno eval <source>` (which then exits), with the sandbox's clean environment. */
async function floor(name: string, source: string): Promise<Record<string, string | number>> {
  const samples: number[] = [];
  for (let i = 0; i < COLD_SPAWNS; i++) {
    const started = performance.now();
    const child = new Deno.Command(Deno.execPath(), {
      args: ["eval", "--no-config", source],
      clearEnv: true,
      env: { DENO_DISABLE_NODE_SHIM: "1" },
      stdout: "piped",
      stderr: "null",
    }).spawn();
    const reader = child.stdout.getReader();
    await reader.read();
    samples.push(performance.now() - started);
    await reader.cancel();
    // Each source exits after its byte: a kill here raced that exit and failed the run ("already terminated").
    await child.status;
  }
  return row(name, samples);
}

function row(name: string, samples: number[]): Record<string, string | number> {
  return {
    benchmark: name,
    calls: samples.length,
    "p50 ms": roundMs(percentile(samples, 50)),
    "p99 ms": roundMs(percentile(samples, 99)),
  };
}

async function expectOk(result: ReturnType<ToolRunner["run"]>): Promise<void> {
  const settled = await result;
  if (!settled.ok) {
    throw new Error(`bench call failed: ${settled.failure.message}`, { cause: settled.failure });
  }
}

if (import.meta.main) {
  console.log(formatTable("Tool runtime (bench/runtime_bench.ts)", await benchRuntime()));
}
