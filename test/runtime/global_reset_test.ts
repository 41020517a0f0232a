/**
 * The per-call reset of `globalThis` cannot be defeated (red team brk-sbx H5). It restored with
 * `Reflect.deleteProperty`/`defineProperty` and ignored their failures: a call that made a global
 * non-configurable, or the global object non-extensible, left its value for the next call of the warm
 * process, maybe another execution's. Now a reset that fails retires the process once the call has ended
 * (the call keeps its result), and the next call runs in a fresh one. Real sandbox processes.
 */
import assert from "node:assert/strict";
import { ToolRunner } from "../../pkg/runtime/tool_runner.ts";
import { call, CONTEXT, ToolDir } from "./_helpers.ts";

/** Step 1 runs `attack` (execution A); step 2 (execution B) reports what it sees of the globals. */
function tool(attack: string): string {
  return `let calls = 0;
  export default (input: { step: number }) => {
    calls++;
    const g = globalThis as any;
    if (input.step === 1) {
      ${attack}
      return "done";
    }
    return {
      clone: structuredClone({ b: "B-data" }),
      atob: typeof g.atob,
      extensible: Object.isExtensible(g),
      pinned: g.pinnedByA ?? null,
      replaced: g.replacedByA ?? null,
      callsInProcess: calls,
    };
  };`;
}

/** What B sees when nothing of A is left; `callsInProcess` 1: B ran in a fresh process. */
const CLEAN = {
  clone: { b: "B-data" },
  atob: "function",
  extensible: true,
  pinned: null,
  replaced: null,
  callsInProcess: 1,
};

Deno.test("a call that pins a global or freezes the global object does not reach the next call", async (t) => {
  const dir = new ToolDir();
  const runner = new ToolRunner({ maxWarmPerKey: 1, startTimeoutMs: 60_000 });
  const run = (path: string, step: number) =>
    runner.run(
      call(path, { step }, {
        timeoutMs: 60_000,
        context: { ...CONTEXT, workflowExecId: step === 1 ? "exec-A" : "exec-B" },
      }),
    );
  try {
    const attacks: Record<string, string> = {
      "structuredClone redefined non-configurable": `Object.defineProperty(g, "structuredClone", {
        value: (v: unknown) => ({ pinnedByA: true, v }), configurable: false, writable: false });`,
      "a new non-configurable global holding A's data": `Object.defineProperty(g, "pinnedByA", {
        value: "A's data", configurable: false, enumerable: false });`,
      "atob deleted, then the global object made non-extensible":
        `delete g.atob; Object.preventExtensions(g);`,
      "the global object made non-extensible, nothing deleted": `Object.preventExtensions(g);`,
      // Before: the reset threw on the frozen list, no result went out, and A's call timed out.
      "the global object's listener list frozen": `const key = Object.getOwnPropertySymbols(g).find((s) =>
        Array.isArray(g[s]?.listeners?.error))!;
        addEventListener("message", () => {});
        Object.freeze(g[key]);
        Object.freeze(g[key].listeners);`,
    };
    for (const [name, attack] of Object.entries(attacks)) {
      await t.step(name, async () => {
        const path = dir.tool(name.replace(/\W+/g, "_"), tool(attack));
        const first = await run(path, 1);
        assert.deepEqual(first.ok && first.output, "done", JSON.stringify(first));
        const second = await run(path, 2);
        // Before: B ran in A's process (callsInProcess 2) and got A's structuredClone ({ pinnedByA: true,
        // … }), A's global, no atob, or a frozen global object.
        assert.deepEqual(second.ok && second.output, CLEAN, JSON.stringify(second));
      });
    }

    await t.step("a global replaced the ordinary way is reset, in the same process", async () => {
      const path = dir.tool("ordinary", tool(`g.replacedByA = "A's data"; g.atob = () => "A";`));
      const first = await run(path, 1);
      assert.deepEqual(first.ok && first.output, "done", JSON.stringify(first));
      const second = await run(path, 2);
      assert.deepEqual(second.ok && second.output, { ...CLEAN, callsInProcess: 2 }, JSON.stringify(second));
    });
  } finally {
    await runner.close();
    dir.cleanup();
  }
});
