/** Shared set-up for the runtime tests: real tool files in temp folders, real sandbox processes. */
import { join } from "node:path";
import { configureNetDeny } from "../../pkg/runtime/net_deny.ts";
import { type ToolCall, ToolRunner } from "../../pkg/runtime/tool_runner.ts";

export const CONTEXT = {
  workflowId: "wf",
  workflowExecId: "wf-exec-1",
  taskId: "task",
  taskExecId: "task-exec-1",
  attempt: 1,
};

/** A temp folder of tool modules, removed by `cleanup()`. */
export class ToolDir {
  readonly path: string;

  constructor(prefix = "compozy-tools-") {
    this.path = Deno.makeTempDirSync({ prefix });
  }

  /** Writes a tool module and returns its absolute path. */
  tool(name: string, source: string): string {
    const file = join(this.path, name.endsWith(".ts") ? name : `${name}.ts`);
    Deno.writeTextFileSync(file, source);
    return file;
  }

  cleanup(): void {
    Deno.removeSync(this.path, { recursive: true });
  }
}

/** A call with test defaults; `overrides` wins. */
export function call(executePath: string, input: unknown, overrides: Partial<ToolCall> = {}): ToolCall {
  return { toolId: "test_tool", executePath, input, timeoutMs: 10_000, context: CONTEXT, ...overrides };
}

/** True while a process with this pid exists (and is not a zombie). */
export function processAlive(pid: number): boolean {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    return !/^\d+ \(.*\) Z/.test(stat);
  } catch {
    return false;
  }
}

/** Polls `condition` until it holds or `timeoutMs` passes. */
export async function eventually(condition: () => boolean, timeoutMs = 5_000): Promise<boolean> {
  const until = performance.now() + timeoutMs;
  while (performance.now() < until) {
    if (condition()) return true;
    await new Promise((r) => setTimeout(r, 20));
  }
  return condition();
}

/** What {@linkcode withDeniedBusPort} gives its test. */
export interface DeniedBusPort {
  /** The stand-in bus port, denied to every sandbox started meanwhile. */
  port: number;
  /** Connections it has accepted so far: any is a sandbox that reached the bus. */
  connections: () => number;
  dir: ToolDir;
  runner: ToolRunner;
}

/**
 * Runs `test` with a stand-in for the bus: a listener bound to every interface, as nats-server's default
 * bind is (so the whole of 127.0.0.0/8 and the unspecified addresses reach it), whose port is denied to
 * sandboxes the way the runtime denies the NATS ports; a fresh tool folder and runner. Everything is undone
 * afterwards, the deny list included.
 */
export async function withDeniedBusPort(test: (bus: DeniedBusPort) => Promise<void>): Promise<void> {
  const listener = Deno.listen({ hostname: "0.0.0.0", port: 0 });
  const { port } = listener.addr as Deno.NetAddr;
  let connections = 0;
  const accepting = (async () => {
    for await (const conn of listener) {
      connections++;
      conn.close();
    }
  })();
  await configureNetDeny([{ host: "127.0.0.1", port }]);
  const dir = new ToolDir();
  const runner = new ToolRunner({});
  try {
    await test({ port, connections: () => connections, dir, runner });
  } finally {
    await configureNetDeny([]);
    await runner.close();
    dir.cleanup();
    listener.close();
    await accepting.catch(() => {/* the listener was closed */});
  }
}
