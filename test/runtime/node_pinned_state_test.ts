/**
 * A failed put-back of Node's objects retires the process (break attempt brk39). Node's objects are put back
 * after each call with `Reflect.defineProperty`/`deleteProperty` (node_guard.ts), which fail silently on a
 * property a call made non-configurable, or on an object it froze or made non-extensible: the next call of
 * the warm process, maybe another execution's, ran with the first call's replacement, which could capture its
 * arguments. Now a put-back that fails retires the process once the call has ended (the call keeps its
 * result), and the next call runs in a fresh one. Real sandbox processes.
 */
import assert from "node:assert/strict";
import { ToolRunner } from "../../pkg/runtime/tool_runner.ts";
import { call, CONTEXT, ToolDir } from "./_helpers.ts";

/** Step 1 (execution A) runs `attack` with its secret; step 2 (execution B) reports what `report` sees. */
function tool(attack: string, report: string): string {
  return `import path from "node:path";
  import util from "node:util";
  import process from "node:process";
  import { PerformanceObserver } from "node:perf_hooks";
  let calls = 0;
  export default (input: { step: number; secret: string }) => {
    calls++;
    const captured: unknown[] = [];
    const spy = (real: (...args: any[]) => unknown) => (...args: any[]) => {
      captured.push(input.secret, ...args);
      return JSON.stringify(captured) + String(real(...args));
    };
    if (input.step === 1) {
      ${attack}
      return "done";
    }
    return { seen: ${report}, callsInProcess: calls };
  };`;
}

Deno.test("a Node object a call pins or freezes does not reach the next call", async (t) => {
  const dir = new ToolDir();
  const runner = new ToolRunner({ maxWarmPerKey: 1, startTimeoutMs: 60_000 });
  const run = (path: string, step: number) =>
    runner.run(
      call(path, { step, secret: step === 1 ? "A's secret" : "B's secret" }, {
        timeoutMs: 60_000,
        context: { ...CONTEXT, workflowExecId: step === 1 ? "exec-A" : "exec-B" },
      }),
    );
  const cases: Record<string, [string, string, unknown]> = {
    "path.join redefined non-configurable": [
      `Object.defineProperty(path, "join", { value: spy(path.join), writable: false, configurable: false });`,
      `path.join("a", "b")`,
      "a/b",
    ],
    "util.format replaced, then util frozen": [
      `(util as any).format = spy(util.format); Object.freeze(util);`,
      `util.format("%s", "b")`,
      "b",
    ],
    "a process method pinned": [
      `Object.defineProperty(process, "cwd", { value: spy(process.cwd), writable: false, configurable: false });`,
      `typeof process.cwd() === "string" && !process.cwd().includes("secret")`,
      true,
    ],
    "a process property added non-configurable": [
      `Object.defineProperty(process, "leftByA", { value: input.secret, configurable: false });`,
      `(process as any).leftByA ?? null`,
      null,
    ],
    // The sandbox freezes the class of an observer a call observes with (call_scope.ts): patched first, the
    // class was frozen with the call's function in place, and the failed put-back went unseen.
    "a Node class the sandbox froze with the call's patch in place": [
      `const proto = PerformanceObserver.prototype as any;
      const disconnect = proto.disconnect;
      proto.disconnect = function (this: unknown) {
        return input.secret + String(disconnect.call(this));
      };
      new PerformanceObserver(() => {}).observe({ entryTypes: ["mark"] });`,
      `(() => {
        const observer = new PerformanceObserver(() => {});
        observer.observe({ entryTypes: ["mark"] });
        return observer.disconnect() ?? null;
      })()`,
      null,
    ],
    "path.basename deleted, then path made non-extensible": [
      `delete (path as any).basename; Object.preventExtensions(path);`,
      `typeof path.basename`,
      "function",
    ],
  };
  try {
    for (const [name, [attack, report, clean]] of Object.entries(cases)) {
      await t.step(name, async () => {
        const path = dir.tool(name.replace(/\W+/g, "_"), tool(attack, report));
        const first = await run(path, 1);
        assert.deepEqual(first.ok && first.output, "done", JSON.stringify(first));
        const second = await run(path, 2);
        // Before: B ran in A's process (callsInProcess 2) with A's function, which logged A's secret
        // and B's arguments, or without path.basename.
        assert.deepEqual(
          second.ok && second.output,
          { seen: clean, callsInProcess: 1 },
          JSON.stringify(second),
        );
      });
    }

    await t.step("a Node object patched the ordinary way is put back, in the same process", async () => {
      const path = dir.tool("ordinary", tool(`(path as any).join = spy(path.join);`, `path.join("a", "b")`));
      const first = await run(path, 1);
      assert.deepEqual(first.ok && first.output, "done", JSON.stringify(first));
      const second = await run(path, 2);
      assert.deepEqual(
        second.ok && second.output,
        { seen: "a/b", callsInProcess: 2 },
        JSON.stringify(second),
      );
    });
  } finally {
    await runner.close();
    dir.cleanup();
  }
});
