/**
 * Code an ended call left running after its reset does not reach the next call (break attempt brk39). The
 * globals and Node's objects are reset when a call ends, but a reaction chain the call left
 * (`Promise.resolve().then(…)` chains, I/O completions, `queueMicrotask`, `process.nextTick`) ran on after
 * that reset, while no call ran, and replaced `atob` (or a Node function) for the next call of the warm
 * process, maybe another execution's, with a function holding the first call's secret. Now code of the tool
 * that runs between calls is noted, and the next call resets first (a tool with Node's layer also has the
 * runtime look at its files again: fd_leftovers_test.ts). Real sandbox processes.
 */
import assert from "node:assert/strict";
import { ToolRunner } from "../../pkg/runtime/tool_runner.ts";
import { call, CONTEXT, ToolDir } from "./_helpers.ts";

/** Step 1 (execution A) leaves `chain` running with `plant` at its end; step 2 (execution B) reports. */
function tool(imports: string, chain: string, report: string): string {
  return `${imports}
  export default (input: { step: number; secret: string }) => {
    const secret = input.secret;
    const plant = () => {
      (globalThis as any).atob = (s: string) => secret + " " + s;
      ${
    imports.includes("node:path")
      ? `(path as any).join = (...args: string[]) => secret + " " + args.join("/");`
      : ""
  }
    };
    if (input.step === 1) {
      ${chain}
      return "done";
    }
    return ${report};
  };`;
}

Deno.test("code an ended call left running after its reset does not reach the next call", async (t) => {
  const dir = new ToolDir();
  const runner = new ToolRunner({ maxWarmPerKey: 1, startTimeoutMs: 60_000 });
  const run = (path: string, step: number) =>
    runner.run(
      call(path, { step, secret: step === 1 ? "A's secret" : "B's secret" }, {
        timeoutMs: 60_000,
        context: { ...CONTEXT, workflowExecId: step === 1 ? "exec-A" : "exec-B" },
      }),
    );
  const atob = `atob("QQ==")`;
  const cases: Record<string, [string, string, string, string]> = {
    "a .then chain": [
      "",
      `let p = Promise.resolve(); for (let i = 0; i < 50; i++) p = p.then(() => {}); p.then(plant);`,
      atob,
      "A",
    ],
    "a crypto.subtle chain": [
      "",
      `void (async () => { for (let i = 0; i < 5; i++) await crypto.subtle.digest("SHA-256", new Uint8Array(4)); plant(); })();`,
      atob,
      "A",
    ],
    "a queueMicrotask chain": [
      "",
      `const f = (n: number): void => n > 0 ? queueMicrotask(() => f(n - 1)) : plant(); f(200);`,
      atob,
      "A",
    ],
    "a process.nextTick chain (Node)": [
      `import process from "node:process";`,
      `const f = (n: number): void => n > 0 ? process.nextTick(() => f(n - 1)) : plant(); f(200);`,
      atob,
      "A",
    ],
    "a crypto.subtle chain replacing path.join (Node)": [
      `import path from "node:path";`,
      `void (async () => { for (let i = 0; i < 5; i++) await crypto.subtle.digest("SHA-256", new Uint8Array(4)); plant(); })();`,
      `[${atob}, path.join("a", "b")].join(" ")`,
      "A a/b",
    ],
  };
  try {
    for (const [name, [imports, chain, report, clean]] of Object.entries(cases)) {
      await t.step(name, async () => {
        const path = dir.tool(name.replace(/\W+/g, "_"), tool(imports, chain, report));
        const first = await run(path, 1);
        assert.deepEqual(first.ok && first.output, "done", JSON.stringify(first));
        // The chain has long ended when B starts.
        await new Promise((r) => setTimeout(r, 300));
        const second = await run(path, 2);
        // Before: "A's secret QQ==": A's atob, holding A's secret, applied to B's argument.
        assert.deepEqual(second.ok && second.output, clean, JSON.stringify(second));
      });
    }

    await t.step("a module an ended call imported, evaluated after its reset", async () => {
      dir.tool(
        "late_module",
        `import { state } from "./importer.ts";
        (globalThis as any).atob = (s: string) => state.secret + " " + s;`,
      );
      const path = dir.tool(
        "importer",
        `export const state = { secret: "" };
        export default (input: { step: number; secret: string }) => {
          if (input.step === 1) {
            state.secret = input.secret;
            void import("./late_module.ts");
            return "done";
          }
          return atob("QQ==");
        };`,
      );
      const first = await run(path, 1);
      assert.deepEqual(first.ok && first.output, "done", JSON.stringify(first));
      await new Promise((r) => setTimeout(r, 300));
      const second = await run(path, 2);
      assert.deepEqual(second.ok && second.output, "A", JSON.stringify(second));
    });
  } finally {
    await runner.close();
    dir.cleanup();
  }
});

Deno.test("calls whose connections settle after they return keep their warm process", async (t) => {
  const dir = new ToolDir();
  const runner = new ToolRunner({ maxWarmPerKey: 1, startTimeoutMs: 60_000 });
  const server = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen() {} }, async (request) => {
    if (request.url.endsWith("/slow")) await new Promise((r) => setTimeout(r, 2_000));
    return new Response("hello");
  });
  const url = `http://127.0.0.1:${server.addr.port}`;
  // Node's http client (its socket kept alive, closed by the call's end), and a fetch left unawaited (aborted
  // by the call's end): what settles after the return runs before the reset, not as code between calls.
  // Before the end waited a turn for it, each next call ran in a fresh process.
  const tools: Record<string, string> = {
    "node:http with a kept-alive socket": `import http from "node:http";
      export default () => new Promise((ok, no) => http.get("${url}/", (res) => {
        let body = "";
        res.on("data", (chunk) => body += chunk);
        res.on("end", () => ok(body));
      }).on("error", no));`,
    "a fetch left unawaited, in a tool with Node's layer": `import "node:fs";
      export default () => { void fetch("${url}/slow").catch(() => {}); return "hello"; };`,
  };
  try {
    for (const [name, source] of Object.entries(tools)) {
      await t.step(name, async () => {
        const path = dir.tool(name.replace(/\W+/g, "_"), source);
        const spawned = runner.stats().spawned;
        for (let i = 0; i < 3; i++) {
          const result = await runner.run(
            call(path, {}, { permissions: { net: [`127.0.0.1:${server.addr.port}`] }, timeoutMs: 60_000 }),
          );
          assert.deepEqual(result.ok && result.output, "hello", JSON.stringify(result));
        }
        assert.equal(runner.stats().spawned - spawned, 1, "the three calls ran in one warm process");
      });
    }
  } finally {
    await runner.close();
    await server.shutdown();
    dir.cleanup();
  }
});
