/**
 * Callbacks a call leaves in reach of later calls (red team round after 3, item 2): a listener on the
 * global object, an `unhandledrejection` or `error` listener or handler property, a listener on another
 * host object, a Node `process` listener, a `MessagePort` listener kept in module state. Each is planted by
 * one execution's call and must neither run during a later call of another execution nor put a line into
 * its logs. Real sandbox processes; the two calls run in one warm process.
 */
import assert from "node:assert/strict";
import { ToolRunner } from "../../pkg/runtime/tool_runner.ts";
import { call, CONTEXT, ToolDir } from "./_helpers.ts";

const PLANTS: Record<string, { plant: string; trigger: string }> = {
  globalListener: {
    plant: `addEventListener("ping", () => ran.push("globalListener"));`,
    trigger: `dispatchEvent(new Event("ping"));`,
  },
  globalCaptureListener: {
    plant: `addEventListener("ping2", () => ran.push("globalCaptureListener"), { capture: true });`,
    trigger: `dispatchEvent(new Event("ping2"));`,
  },
  unhandledRejectionListener: {
    plant:
      `addEventListener("unhandledrejection", (e) => { ran.push("unhandledRejectionListener"); console.log("A saw", String((e as any).reason)); });
            addEventListener("unhandledrejection", () => ran.push("unhandledRejectionCapture"), { capture: true });`,
    trigger: `void Promise.reject(new Error("B's stray rejection"));`,
  },
  unhandledRejectionProperty: {
    plant:
      `(globalThis as any).onunhandledrejection = () => { ran.push("unhandledRejectionProperty"); console.log("A's handler"); };`,
    trigger: `void Promise.reject(new Error("B's second stray rejection"));`,
  },
  errorProperty: {
    plant:
      `(globalThis as any).onerror = () => { ran.push("errorProperty"); console.log("A's error handler"); };`,
    trigger: `setTimeout(() => { throw new Error("B's stray error"); }, 0);`,
  },
  performanceListener: {
    plant:
      `try { performance.addEventListener("mark", () => ran.push("performanceListener")); } catch { refused.push("performanceListener"); }`,
    trigger: `try { performance.dispatchEvent(new Event("mark")); } catch { /* frozen */ }`,
  },
  processListener: {
    plant:
      `process.on("unhandledRejection", () => { ran.push("processListener"); console.log("A's process listener"); });`,
    trigger: `void Promise.reject(new Error("B's third stray rejection"));`,
  },
};

const TOOL = `
import process from "node:process";
const ran: string[] = [];
const refused: string[] = [];
export default async (input: { phase: string }) => {
  if (input.phase === "plant") {
${Object.values(PLANTS).map((p) => `    ${p.plant}`).join("\n")}
    return { pid: Deno.pid, refused };
  }
${Object.values(PLANTS).map((p) => `  ${p.trigger}`).join("\n")}
  await new Promise((r) => setTimeout(r, 300));
  return { pid: Deno.pid, ran };
};
`;

Deno.test("callbacks one execution's call planted never run in, or log into, a later execution's call", async () => {
  const dir = new ToolDir();
  const runner = new ToolRunner({ maxWarmPerKey: 1, startTimeoutMs: 60_000 });
  try {
    const tool = dir.tool("stored_callbacks", TOOL);
    const a = await runner.run(
      call(tool, { phase: "plant" }, {
        timeoutMs: 60_000,
        context: { ...CONTEXT, workflowExecId: "exec-A" },
      }),
    );
    assert.ok(a.ok, JSON.stringify(a));
    const lines: string[] = [];
    const b = await runner.run(
      call(tool, { phase: "trigger" }, {
        timeoutMs: 60_000,
        context: { ...CONTEXT, workflowExecId: "exec-B" },
        onLog: ({ message }) => lines.push(message),
      }),
    );
    assert.ok(b.ok, JSON.stringify(b));
    const out = b.output as { pid: number; ran: string[] };
    assert.equal(out.pid, (a.output as { pid: number }).pid, "one warm process ran both calls");
    assert.deepEqual(out.ran, [], "callbacks of execution A ran during execution B's call");
    assert.deepEqual(lines.filter((l) => /^A/.test(l)), [], "execution A's callbacks logged under B");
  } finally {
    await runner.close();
    dir.cleanup();
  }
});

/**
 * Code a call runs in the module load's context: before, the load's context was the sandbox's own, whose
 * reactions run at any time, so a chain a call started there (through a reaction the load registered on a
 * promise the call resolves, or an `AsyncLocalStorage.snapshot()` taken at load) ran on during later calls:
 * it read a later execution's input from module state and wrote into its output.
 */
const LOAD_CONTEXT: Record<string, string> = {
  "a reaction the load registered": `
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    gate.then(() => chain());
    const start = () => release();`,
  "an AsyncLocalStorage.snapshot() of the load": `
    import { AsyncLocalStorage } from "node:async_hooks";
    const outside = AsyncLocalStorage.snapshot();
    const start = () => outside(() => void chain());`,
};

for (const [name, setup] of Object.entries(LOAD_CONTEXT)) {
  Deno.test(`a call's code run in the load's context (${name}) never acts in a later call`, async () => {
    const dir = new ToolDir();
    const runner = new ToolRunner({ maxWarmPerKey: 1, startTimeoutMs: 60_000 });
    try {
      const tool = dir.tool(
        "load_context",
        `${setup.includes("import ") ? setup.slice(0, setup.indexOf(";") + 1) : ""}
         let lastInput = "";
         let owner = "";
         const box: string[] = [];
         async function chain(): Promise<void> {
           for (let i = 0; i < 2_000; i++) {
             await crypto.subtle.digest("SHA-256", new Uint8Array(8));
             if (lastInput !== owner) return void box.push(owner + " read " + lastInput);
           }
         }
         ${setup.includes("import ") ? setup.slice(setup.indexOf(";") + 1) : setup}
         export default async (input: { secret: string }) => {
           lastInput = input.secret;
           if (owner === "") {
             owner = input.secret;
             start();
             return { pid: Deno.pid, box: [] };
           }
           await new Promise((r) => setTimeout(r, 300));
           return { pid: Deno.pid, box };
         };`,
      );
      const a = await runner.run(call(tool, { secret: "alice" }, { timeoutMs: 60_000 }));
      assert.ok(a.ok, JSON.stringify(a));
      const b = await runner.run(call(tool, { secret: "bob" }, { timeoutMs: 60_000 }));
      assert.ok(b.ok, JSON.stringify(b));
      const out = b.output as { pid: number; box: string[] };
      assert.deepEqual(out.box, [], "the first call's chain ran during the second and read its input");
    } finally {
      await runner.close();
      dir.cleanup();
    }
  });
}

Deno.test("a Web Lock a call holds is released when it returns, and its waiting request withdrawn", async () => {
  const dir = new ToolDir();
  const runner = new ToolRunner({ maxWarmPerKey: 1, startTimeoutMs: 60_000 });
  try {
    // Before, a lock whose callback never settles stayed held: a later call of another execution found it
    // taken, and one that waited for it waited until its time limit.
    const tool = dir.tool(
      "held_lock",
      `const granted: string[] = [];
       export default async (input: { phase: string }) => {
         const locks = (navigator as any).locks;
         if (input.phase === "hold") {
           await new Promise<void>((held) => locks.request("L", () => { held(); return new Promise(() => {}); }));
           // Waits behind the held lock; withdrawn when the call returns, so its callback never runs.
           void locks.request("L", () => { granted.push("the first call's waiting request"); }).catch(() => {});
           return { pid: Deno.pid };
         }
         const state = await locks.request("L", { ifAvailable: true }, (lock: unknown) => lock === null ? "taken" : "free");
         await new Promise((r) => setTimeout(r, 200));
         return { pid: Deno.pid, state, granted };
       };`,
    );
    // On a loaded machine a process may be retired between the two calls (its idle check): the pair is run
    // again until one process ran both, which the assertions are about.
    let checked = 0;
    for (let attempt = 0; attempt < 5 && checked === 0; attempt++) {
      const first = await runner.run(call(tool, { phase: "hold" }, { timeoutMs: 60_000 }));
      assert.ok(first.ok, JSON.stringify(first));
      const second = await runner.run(call(tool, { phase: "look" }, { timeoutMs: 60_000 }));
      assert.ok(second.ok, JSON.stringify(second));
      const out = second.output as { pid: number; state: string; granted: string[] };
      if (out.pid !== (first.output as { pid: number }).pid) continue;
      checked++;
      assert.equal(out.state, "free", "the first call's lock was still held in the second");
      assert.deepEqual(out.granted, []);
    }
    assert.equal(checked, 1, "no attempt ran both calls in one warm process");
  } finally {
    await runner.close();
    dir.cleanup();
  }
});

const OBSERVERS: Record<string, string> = {
  "the global PerformanceObserver": "const Observer = PerformanceObserver;",
  "node:perf_hooks' PerformanceObserver":
    `import { PerformanceObserver as NodeObserver } from "node:perf_hooks"; const Observer = NodeObserver;`,
};

for (const [name, setup] of Object.entries(OBSERVERS)) {
  Deno.test(`${name} of one execution's call never sees, nor logs into, a later one`, async () => {
    const dir = new ToolDir();
    const runner = new ToolRunner({ maxWarmPerKey: 1, startTimeoutMs: 60_000 });
    try {
      // Before, the observer of execution A saw B's mark names, and its console line came out under B's ids.
      const tool = dir.tool(
        "observer",
        `${setup}
         const seen: string[] = [];
         export default async (input: { exec: string }) => {
           if (input.exec === "A") {
             new Observer((list: any) => {
               for (const entry of list.getEntries()) seen.push("A saw " + entry.name);
               console.log("A's observer");
             }).observe({ entryTypes: ["mark"] });
             performance.mark("A's own mark");
             await new Promise((r) => setTimeout(r, 100));
             return { pid: Deno.pid, seen: [...seen] };
           }
           performance.mark("B-secret");
           await new Promise((r) => setTimeout(r, 300));
           return { pid: Deno.pid, seen };
         };`,
      );
      let checked = 0;
      for (let attempt = 0; attempt < 5 && checked === 0; attempt++) {
        const a = await runner.run(
          call(tool, { exec: "A" }, { timeoutMs: 60_000, context: { ...CONTEXT, workflowExecId: "exec-A" } }),
        );
        assert.ok(a.ok, JSON.stringify(a));
        // Within its own call, the observer works.
        assert.deepEqual((a.output as { seen: string[] }).seen, ["A saw A's own mark"]);
        const lines: string[] = [];
        const b = await runner.run(call(tool, { exec: "B" }, {
          timeoutMs: 60_000,
          context: { ...CONTEXT, workflowExecId: "exec-B" },
          onLog: ({ message }) => lines.push(message),
        }));
        assert.ok(b.ok, JSON.stringify(b));
        const out = b.output as { pid: number; seen: string[] };
        if (out.pid !== (a.output as { pid: number }).pid) continue;
        checked++;
        assert.deepEqual(out.seen, ["A saw A's own mark"], "A's observer saw B's marks");
        assert.deepEqual(lines, [], "A's observer logged under B's ids");
      }
      assert.equal(checked, 1, "no attempt ran both calls in one warm process");
    } finally {
      await runner.close();
      dir.cleanup();
    }
  });
}
