/**
 * An engine on a real nats-server for integration tests, with a project written to a temporary folder.
 * `runtime` stands in for the runtime process where a test scripts what each tool returns; the tests of
 * the real sandbox run the real runtime.
 */
import { create } from "@bufbuild/protobuf";
import type { NatsConnection } from "@nats-io/transport-node";
import { type EngineHandle, type EngineOptions, startEngine } from "../../engine/mod.ts";
import { loadProject, type Project } from "../../engine/domain/project/mod.ts";
import { Bus, connectNats, provisionJetStream } from "../../pkg/nats/mod.ts";
import { type ToolExecute, ToolExecuteResultSchema } from "../../pkg/pb/mod.ts";
import { HeldCalls } from "../../pkg/runtime/held_calls.ts";
import { startTestNats, type TestNats } from "./nats.ts";

export interface EngineHarness {
  nats: TestNats;
  nc: NatsConnection;
  bus: Bus;
  project: Project;
  engine: EngineHandle;
  dir: string;
  close(): Promise<void>;
}

/** Writes `files` (path → content) into a new temporary folder and returns it. */
export async function writeProject(files: Record<string, string>): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "compozy-project-" });
  for (const [path, content] of Object.entries(files)) {
    const full = `${dir}/${path}`;
    await Deno.mkdir(full.slice(0, full.lastIndexOf("/")), { recursive: true });
    await Deno.writeTextFile(full, content);
  }
  return dir;
}

/** An engine for a project given as files (written to a temporary folder) or as an existing folder. */
export async function startEngineHarness(
  project: Record<string, string> | string,
  options: Pick<EngineOptions, "ackWaitMs" | "redelivery"> & { processEnv?: Record<string, string> } = {},
): Promise<EngineHarness> {
  const owned = typeof project !== "string";
  const dir = owned ? await writeProject(project) : project;
  const loaded = await loadProject(dir, { processEnv: options.processEnv });
  const nats = await startTestNats();
  // The engine role's inbox prefix: a runtime connected with its own user may answer only there (auth.ts).
  const nc = await connectNats(nats.url, { name: "engine-test", role: "engine" });
  await provisionJetStream(nc);
  const bus = new Bus(nc, { source: "engine" });
  const engine = await startEngine({
    nc,
    bus,
    project: loaded,
    instanceId: "engine-test",
    ackWaitMs: options.ackWaitMs,
    redelivery: options.redelivery,
  });
  return {
    nats,
    nc,
    bus,
    project: loaded,
    engine,
    dir,
    async close() {
      await engine.stop();
      await nc.close();
      await nats.stop();
      if (owned) await Deno.remove(dir, { recursive: true }).catch(() => {});
    },
  };
}

export type ScriptedTool = (input: Record<string, unknown>, call: ToolExecute) => unknown | Promise<unknown>;

/**
 * Answers ToolExecute requests with scripted functions by tool id (a thrown error fails the call). Like the
 * runtime, it holds each call while it runs (the engine sends a call no runtime holds again).
 */
export function scriptedRuntime(bus: Bus, tools: Record<string, ScriptedTool>): { stop(): void } {
  const held = new HeldCalls(bus.nc);
  const sub = bus.serve(
    "compozy.*.tool.cmds.*.execute",
    "runtime",
    ToolExecuteResultSchema,
    (m) => held.hold((m as ToolExecute).tool?.execId ?? "", () => runScripted(tools, m as ToolExecute)),
  );
  return { stop: () => sub.unsubscribe() };
}

async function runScripted(tools: Record<string, ScriptedTool>, call: ToolExecute) {
  const input = JSON.parse(new TextDecoder().decode(call.inputJson) || "null");
  const base = { metadata: call.metadata, workflow: call.workflow, task: call.task, tool: call.tool };
  try {
    const output = await tools[call.tool!.id](input, call);
    return create(ToolExecuteResultSchema, {
      result: {
        case: "success",
        value: { ...base, outputJson: new TextEncoder().encode(JSON.stringify(output)) },
      },
    });
  } catch (e) {
    const error = e as Error & { retryable?: boolean };
    return create(ToolExecuteResultSchema, {
      result: {
        case: "failed",
        value: {
          ...base,
          error: { message: error.message, code: "tool_threw", retryable: !!error.retryable },
        },
      },
    });
  }
}
