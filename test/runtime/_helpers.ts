/** Shared set-up for the runtime tests: real tool files in temp folders, real sandbox processes. */
import { join } from "node:path";
import type { ToolCall } from "../../pkg/runtime/tool_runner.ts";

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
