/**
 * The real runtime process as the stack starts it (cli/runtime_process.ts), with the runtime's own NATS
 * user, and a way to call a tool file through it as the engine does (a ToolExecute request on the bus).
 */
import { create } from "@bufbuild/protobuf";
import { runtimeCommand } from "../../cli/runtime_process.ts";
import { type Bus, credentialsEnv } from "../../pkg/nats/mod.ts";
import { type ToolExecuteResult, ToolExecuteResultSchema, ToolExecuteSchema } from "../../pkg/pb/mod.ts";
import type { TestNats } from "./nats.ts";

export interface TestRuntime {
  readonly pid: number;
  stop(): Promise<void>;
  /** SIGKILL, as a crash: nothing is flushed or answered. */
  kill(): Promise<void>;
}

export function startRuntimeProcess(nats: TestNats, env: Record<string, string> = {}): TestRuntime {
  const { command, args } = runtimeCommand(nats.plainUrl, "test-runtime");
  const child = new Deno.Command(command, {
    args,
    env: { NATS_URL: nats.plainUrl, ...credentialsEnv(nats.auth.users.runtime), ...env },
    stdin: "piped",
    stdout: "null",
    stderr: "inherit",
  }).spawn();
  return {
    pid: child.pid,
    async stop() {
      child.kill("SIGTERM");
      await child.status;
    },
    async kill() {
      child.kill("SIGKILL");
      await child.status;
    },
  };
}

/** Calls the tool module at `executePath` through the runtime; waits for the runtime to answer. */
export async function callTool(
  bus: Bus,
  executePath: string,
  input: unknown,
  permissions: Record<string, unknown> = {},
): Promise<ToolExecuteResult> {
  const message = create(ToolExecuteSchema, {
    metadata: bus.metadata("exec-1"),
    workflow: { id: "wf", execId: "exec-1" },
    task: { id: "task", execId: "task-1" },
    tool: { id: "tool", execId: crypto.randomUUID() },
    attempt: 1,
    inputJson: new TextEncoder().encode(JSON.stringify(input)),
    definitionJson: new TextEncoder().encode(
      JSON.stringify({ id: "tool", executePath, permissions, timeoutMs: 30_000 }),
    ),
    timeoutMs: 30_000n,
  });
  // Until the runtime consumes, the request has no responders and is retried up to the deadline.
  return await bus.request(message, ToolExecuteResultSchema, { timeoutMs: 30_000, deadlineMs: 60_000 });
}
