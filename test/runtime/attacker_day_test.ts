/**
 * A further day of attacks on the warm sandbox (issue 10, follow-up), past the red team and escape suites.
 * What worked became a failing test first (a global listener of one call logging into the next, a global
 * message listener overhearing the next call's input, a microtask loop burning an idle pooled process, a
 * write grant over a module of the tool's graph that let a rewritten module import a computed `data:` URL);
 * what was refused is asserted with its failure code. Real sandbox processes.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { type ToolResult, ToolRunner } from "../../pkg/runtime/tool_runner.ts";
import { call, eventually, processAlive, ToolDir } from "./_helpers.ts";

const OTHER = {
  workflowId: "wf",
  workflowExecId: "wf-exec-2",
  taskId: "task",
  taskExecId: "task-exec-2",
  attempt: 1,
};

function output(result: ToolResult): unknown {
  assert.ok(result.ok, `expected success, got ${JSON.stringify(!result.ok && result.failure)}`);
  return result.output;
}

function code(result: ToolResult): string {
  return result.ok ? `ok: ${JSON.stringify(result.output)}` : result.failure.code;
}

Deno.test("listeners a call adds to the global object never act in a later call", async (t) => {
  const dir = new ToolDir();
  const runner = new ToolRunner({ maxWarmPerKey: 1 });
  try {
    const tool = dir.tool(
      "global_listeners",
      `const overheard: unknown[] = [];
       export default async (input: { mode: string; secret: string }) => {
         if (input.mode === "listen") {
           addEventListener("unhandledrejection", () => console.log("rejection seen by " + input.secret));
           addEventListener("error", () => console.log("error seen by " + input.secret));
           addEventListener("message", (e) => overheard.push((e as MessageEvent).data));
           return Deno.pid;
         }
         Promise.reject(new Error("a rejection of the later call"));
         await new Promise((r) => setTimeout(r, 50));
         return { pid: Deno.pid, overheard: overheard.length };
       };`,
    );
    const pid = output(await runner.run(call(tool, { mode: "listen", secret: "exec-1-secret" })));
    const logs: string[] = [];
    const later = output(
      await runner.run(
        call(tool, { mode: "later", secret: "exec-2-secret" }, {
          context: OTHER,
          onLog: (e) => logs.push(e.message),
        }),
      ),
    ) as { pid: number; overheard: number };
    await t.step("the same warm worker ran both", () => assert.equal(later.pid, pid));
    await t.step("the earlier call's listener did not log into the later call", () => {
      assert.ok(!logs.some((l) => l.includes("exec-1-secret")), logs.join("\n"));
      assert.ok(logs.some((l) => l.includes("a rejection of the later call")), "the sandbox reported it");
    });
    await t.step("the earlier call's message listener did not hear the later call's input", () => {
      assert.equal(later.overheard, 0);
    });
  } finally {
    await runner.close();
    dir.cleanup();
  }
});

Deno.test("a microtask loop left behind does not burn an idle pooled process", async () => {
  const dir = new ToolDir();
  const runner = new ToolRunner({ maxWarmPerKey: 1 });
  try {
    const tool = dir.tool(
      "microtask_loop",
      `export default (mode: string) => {
         if (mode === "leave") { const spin = () => queueMicrotask(spin); spin(); }
         return Deno.pid;
       };`,
    );
    const pid = output(await runner.run(call(tool, "leave", { timeoutMs: 30_000 }))) as number;
    // No further call: the sandbox must not sit in the pool spinning until one comes.
    assert.ok(await eventually(() => !processAlive(pid), 10_000), "the spinning process was killed");
    const next = output(await runner.run(call(tool, "next", { timeoutMs: 30_000 })));
    assert.notEqual(next, pid);
  } finally {
    await runner.close();
    dir.cleanup();
  }
});

Deno.test("a write grant never reaches a module the sandbox loads", async (t) => {
  const dir = new ToolDir();
  const runner = new ToolRunner({ maxWarmPerKey: 1 });
  try {
    Deno.mkdirSync(join(dir.path, "plugins"));
    Deno.writeTextFileSync(join(dir.path, "plugins", "plugin.ts"), `export default () => "original";`);
    const tool = dir.tool(
      "rewriter",
      `export default async (mode: string) => {
         if (mode === "rewrite") {
           // A module that imports a computed data: URL: the import policy would refuse it at start.
           Deno.writeTextFileSync(new URL("./plugins/plugin.ts", import.meta.url),
             'export default () => import("data:text/javascript,export default " + 6 * 7).then((m) => m.default);');
           return "rewritten";
         }
         return await (await import("./plugins/plugin.ts")).default();
       };`,
    );
    await t.step("a write entry covering a module of the graph is refused before anything runs", async () => {
      const permissions = { read: ["./plugins"], write: ["./plugins"] };
      const result = await runner.run(call(tool, "rewrite", { permissions, timeoutMs: 30_000 }));
      assert.equal(code(result), "tool_permission_denied");
      assert.match(!result.ok ? result.failure.message : "", /plugin\.ts, a module the sandbox loads/);
    });
    await t.step("write: true cannot rewrite it either", async () => {
      // Alone: with read: true it is refused before anything runs (redteam9_test.ts, H4).
      const permissions = { write: true as const };
      const result = await runner.run(call(tool, "rewrite", { permissions, timeoutMs: 30_000 }));
      assert.equal(code(result), "tool_permission_denied");
      const loaded = await runner.run(call(tool, "load", { permissions, timeoutMs: 30_000 }));
      assert.equal(output(loaded), "original");
    });
  } finally {
    await runner.close();
    dir.cleanup();
  }
});

Deno.test("attacks that are refused, each with its failure code", async (t) => {
  const dir = new ToolDir();
  const runner = new ToolRunner({ maxWarmPerKey: 1 });
  try {
    const tool = dir.tool(
      "refused",
      `export default async (mode: string) => {
         switch (mode) {
           case "env": return Deno.env.toObject();
           case "one env": return Deno.env.get("FOO");
           case "proc": return Deno.readTextFileSync("/proc/self/environ");
           case "prepareStackTrace": (Error as any).prepareStackTrace = () => "forged"; return "patched";
           case "permissions": return (await Deno.permissions.request({ name: "run" })).state;
         }
       };`,
    );
    const cases: Array<[string, Record<string, unknown>, string]> = [
      ["env", {}, "tool_permission_denied"],
      ["proc", { read: true }, "tool_permission_denied"],
      ["prepareStackTrace", {}, "tool_threw"],
    ];
    for (const [mode, permissions, expected] of cases) {
      await t.step(`${mode}: ${expected}`, async () => {
        assert.equal(code(await runner.run(call(tool, mode, { permissions, timeoutMs: 30_000 }))), expected);
      });
    }
    await t.step("a denied permission says which permissions field grants it, not Deno's flag", async () => {
      const result = await runner.run(call(tool, "one env", { timeoutMs: 30_000 }));
      assert.ok(!result.ok && result.failure.code === "tool_permission_denied", JSON.stringify(result));
      assert.match(
        result.failure.message,
        /Requires env access to "FOO": the tool's permissions\.env does not/,
      );
      assert.doesNotMatch(result.failure.message, /--allow-env/);
    });
    await t.step("Deno.permissions.request is denied, never prompted", async () => {
      assert.equal(output(await runner.run(call(tool, "permissions", { timeoutMs: 30_000 }))), "denied");
    });
  } finally {
    await runner.close();
    dir.cleanup();
  }
});
