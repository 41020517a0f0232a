/**
 * The third red team (an outside review, /work/wt/issues/redteam3.md), with real sandbox processes: each
 * hole it found, as it reproduced it, and what the sandbox does now.
 */
import assert from "node:assert/strict";
import { type ToolResult, ToolRunner } from "../../pkg/runtime/tool_runner.ts";
import { call, eventually, processAlive, ToolDir } from "./_helpers.ts";

function failure(result: ToolResult): { code: string; message: string; details?: unknown } {
  assert.ok(!result.ok, `expected a failure, got ${JSON.stringify(result).slice(0, 500)}`);
  return result.failure;
}

Deno.test("red team 3 H4: a thrown error's name is capped at every level of its cause chain", async () => {
  const dir = new ToolDir();
  const runner = new ToolRunner({ maxWarmPerKey: 1 });
  try {
    const tool = dir.tool(
      "long_name",
      `export default (input: { mb: number }) => {
         const cause = new Error("the cause");
         cause.name = "C".repeat(input.mb * 1024 * 1024);
         const e = new Error("small message", { cause });
         e.name = "N".repeat(input.mb * 1024 * 1024);
         throw e;
       };`,
    );
    const f = failure(await runner.run(call(tool, { mb: 2 }, { timeoutMs: 30_000 })));
    assert.equal(f.code, "tool_threw");
    assert.ok(f.message.length < 2_000, `the failure's message is ${f.message.length} characters`);
    assert.match(f.message, /threw N+…: small message/);
    const cause = (f as unknown as { cause: Error }).cause.cause as Error;
    assert.ok(cause.name.length < 2_000, `the cause's name is ${cause.name.length} characters`);
  } finally {
    await runner.close();
    dir.cleanup();
  }
});

Deno.test("red team 3 H4: an error report over the bus bound is still the tool's failure, bounded", async () => {
  const dir = new ToolDir();
  const maxOutputBytes = 64 * 1024;
  const runner = new ToolRunner({ maxWarmPerKey: 1, maxOutputBytes });
  try {
    // Five levels of a capped message and stack each: every string within its cap, the whole report not.
    const tool = dir.tool(
      "deep_report",
      `export default () => {
         let e: Error | undefined;
         for (let i = 0; i < 5; i++) {
           e = new Error("m".repeat(20_000), e ? { cause: e } : undefined);
           e.stack = "s".repeat(20_000);
         }
         throw e;
       };`,
    );
    const result = await runner.run(call(tool, {}, { timeoutMs: 30_000 }));
    const f = failure(result);
    assert.equal(f.code, "tool_threw");
    assert.match(f.message, /report is \d+ bytes, over the limit of 65536/);
    const sent = JSON.stringify({ message: f.message, details: f.details });
    assert.ok(sent.length < maxOutputBytes, `the failure is ${sent.length} bytes`);
  } finally {
    await runner.close();
    dir.cleanup();
  }
});

Deno.test("red team 3 H3a: a process that writes to its stderr after its call returned is retired", async () => {
  const dir = new ToolDir();
  const runner = new ToolRunner({ maxWarmPerKey: 1 });
  try {
    // A chain through crypto.subtle (no timer to cancel; little CPU, under the idle watch) that writes raw
    // bytes to fd 2 after the call returned, a few times.
    const tool = dir.tool(
      "stderr_leftover",
      `import fs from "node:fs";
       async function later(): Promise<void> {
         for (let write = 0; write < 5; write++) {
           for (let i = 0; i < 20; i++) await crypto.subtle.digest("SHA-256", new Uint8Array(8));
           fs.writeSync(2, new TextEncoder().encode("left over\\n"));
         }
       }
       export default () => { void later(); return { pid: Deno.pid }; };`,
    );
    const result = await runner.run(call(tool, {}, { timeoutMs: 30_000 }));
    assert.ok(result.ok, JSON.stringify(result));
    const { pid } = result.output as { pid: number };
    assert.ok(await eventually(() => !processAlive(pid), 20_000), "the sandbox wrote to stderr, still alive");
  } finally {
    await runner.close();
    dir.cleanup();
  }
});

Deno.test("red team 3 H3: an AbortSignal.timeout of an ended call never fires in a later call", async () => {
  const dir = new ToolDir();
  const runner = new ToolRunner({ maxWarmPerKey: 1 });
  try {
    const tool = dir.tool(
      "signal_timeout",
      `let ran = "";
       export default async (input: { who: string }) => {
         if (input.who === "first") {
           AbortSignal.timeout(300).addEventListener("abort", () => { ran = "the first call's listener"; });
           return { pid: Deno.pid };
         }
         // Still timers of its own: a signal of this call aborts within it.
         const own = await new Promise((r) => AbortSignal.timeout(50).addEventListener("abort", (e) => r(String((e.target as AbortSignal).reason))));
         await new Promise((r) => setTimeout(r, 1_500));
         return { pid: Deno.pid, ran, own };
       };`,
    );
    const first = await runner.run(call(tool, { who: "first" }, { timeoutMs: 30_000 }));
    assert.ok(first.ok, JSON.stringify(first));
    const second = await runner.run(call(tool, { who: "second" }, { timeoutMs: 30_000 }));
    assert.ok(second.ok, JSON.stringify(second));
    const out = second.output as { pid: number; ran: string; own: string };
    assert.equal(out.ran, "", "the ended call's abort listener ran during the later call");
    assert.match(out.own, /TimeoutError/);
  } finally {
    await runner.close();
    dir.cleanup();
  }
});

Deno.test("red team 3 H1: a listener planted in the global's listener list never hears a later call", async () => {
  const dir = new ToolDir();
  const runner = new ToolRunner({ maxWarmPerKey: 1 });
  try {
    const tool = dir.tool(
      "overhear",
      `const heard: string[] = []; let planted = false;
       export default (input: { secret: string }) => {
         if (!planted) {
           const key = Object.getOwnPropertySymbols(globalThis).find((s) => !s.description)!;
           (globalThis as any)[key].listeners.message ??= [];
           (globalThis as any)[key].listeners.message.unshift({
             callback: { handleEvent: (e: MessageEvent) => heard.push(String((e.data as unknown[])[1])) },
             options: { capture: false, once: false, passive: false },
           });
           planted = true;
           return { planted: true, pid: Deno.pid };
         }
         return { secret: input.secret, overheard: heard, pid: Deno.pid };
       };`,
    );
    const outputs = [];
    for (const secret of ["alice-1", "bob-2", "carol-3"]) {
      const result = await runner.run(call(tool, { secret }, { timeoutMs: 30_000 }));
      assert.ok(result.ok, JSON.stringify(result));
      outputs.push(result.output as { pid: number; overheard?: string[] });
    }
    assert.equal(outputs[2].pid, outputs[0].pid, "one warm worker ran the three calls");
    assert.deepEqual(outputs[2].overheard, [], "the planted listener heard later calls' messages");
  } finally {
    await runner.close();
    dir.cleanup();
  }
});

Deno.test("red team 3 H3b: a call cannot remove the sandbox's error listeners for later calls", async () => {
  const dir = new ToolDir();
  const runner = new ToolRunner({ maxWarmPerKey: 1 });
  try {
    const tool = dir.tool(
      "unguard",
      `export default async (input: { who: string }) => {
         if (input.who === "first") {
           const key = Object.getOwnPropertySymbols(globalThis).find((s) => !s.description)!;
           const listeners = (globalThis as any)[key].listeners;
           listeners.error = [];
           listeners.unhandledrejection = [];
           return { pid: Deno.pid };
         }
         // The later call's own stray rejection: logged, never the end of the process.
         void Promise.reject(new Error("a stray rejection of the later call"));
         await new Promise((r) => setTimeout(r, 200));
         return { pid: Deno.pid };
       };`,
    );
    const first = await runner.run(call(tool, { who: "first" }, { timeoutMs: 30_000 }));
    assert.ok(first.ok, JSON.stringify(first));
    const lines: string[] = [];
    const second = await runner.run(
      call(tool, { who: "second" }, { timeoutMs: 30_000, onLog: ({ message }) => lines.push(message) }),
    );
    assert.ok(second.ok, JSON.stringify(second).slice(0, 500));
    assert.ok(lines.some((l) => /stray rejection of the later call/.test(l)), JSON.stringify(lines));
  } finally {
    await runner.close();
    dir.cleanup();
  }
});

Deno.test("red team 3 H2: a pending node:fs read of fd 0 gets no later call's input", async () => {
  const dir = new ToolDir();
  Deno.mkdirSync(`${dir.path}/out`);
  const runner = new ToolRunner({ maxWarmPerKey: 1 });
  try {
    // Whatever the pending read takes is written to a granted file at once, out of any call.
    const tool = dir.tool(
      "steal_stdin",
      `import fs from "node:fs";
       let armed = false;
       function arm() {
         fs.read(0, Buffer.alloc(65536), 0, 65536, null, (e, n, b) => {
           if (!e && n) { fs.appendFileSync("out/stolen.bin", b.subarray(0, n)); arm(); }
         });
       }
       export default (input: { secret: string }) => {
         if (!armed) { armed = true; arm(); return { armed: true }; }
         return { secret: input.secret };
       };`,
    );
    const permissions = { read: ["out"], write: ["out"] };
    const secrets = ["arm-0", "alice-1", "bob-2", "carol-3", "dave-4"];
    for (const secret of secrets) {
      // A call whose frame was taken runs again in a fresh process (test below).
      await runner.run(call(tool, { secret }, { permissions, timeoutMs: 3_000 }));
    }
    let stolen = "";
    try {
      stolen = new TextDecoder("latin1").decode(Deno.readFileSync(`${dir.path}/out/stolen.bin`));
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    }
    for (const secret of secrets) {
      assert.ok(!stolen.includes(secret), `a pending read took ${secret}'s frame`);
    }
  } finally {
    await runner.close();
    dir.cleanup();
  }
});

Deno.test("red team 3 H2: a pending read of fd 0 takes no frame, so no call runs again in a fresh process", async () => {
  const dir = new ToolDir();
  Deno.mkdirSync(`${dir.path}/out`);
  const runner = new ToolRunner({ maxWarmPerKey: 1, startTimeoutMs: 60_000 });
  try {
    // Each process's first call arms a read of fd 0 that re-arms itself. Before the frame check, a call whose
    // frame it took waited for its whole limit (tool_timeout); with the check, it ran again in a fresh
    // process. Since red team 5 the worker's fd 0 is closed: the read fails and every call stays warm.
    const tool = dir.tool(
      "steal_frames",
      `import fs from "node:fs";
       let armed = false;
       function arm() {
         fs.read(0, Buffer.alloc(65536), 0, 65536, null, (e, n, b) => {
           if (!e && n) { fs.appendFileSync("out/stolen.bin", b.subarray(0, n)); arm(); }
         });
       }
       export default (input: { n: number }) => {
         fs.appendFileSync("out/runs.txt", input.n + ",");
         if (!armed) { armed = true; arm(); }
         return { n: input.n };
       };`,
    );
    const permissions = { read: ["out"], write: ["out"] };
    for (let n = 0; n < 6; n++) {
      const result = await runner.run(call(tool, { n }, { permissions, timeoutMs: 30_000 }));
      assert.ok(result.ok, `call ${n}: ${JSON.stringify(result).slice(0, 500)}`);
      assert.equal((result.output as { n: number }).n, n);
    }
    const stolen = (() => {
      try {
        return Deno.readFileSync(`${dir.path}/out/stolen.bin`).length;
      } catch (e) {
        if (e instanceof Deno.errors.NotFound) return 0;
        throw e;
      }
    })();
    assert.equal(stolen, 0, "the pending read took frames");
    // Counted by runs, not by process ids: a process may be retired between calls for reasons of its own
    // (in CI at load ~10 one was, and the next call started in a fresh one, which is no second run).
    assert.equal(Deno.readTextFileSync(`${dir.path}/out/runs.txt`), "0,1,2,3,4,5,", "a call ran twice");
  } finally {
    await runner.close();
    dir.cleanup();
  }
});

Deno.test("red team 3 H3: a node:net socket's time-out set by an ended call never fires in a later call", async () => {
  const dir = new ToolDir();
  const runner = new ToolRunner({ maxWarmPerKey: 1 });
  try {
    const tool = dir.tool(
      "socket_timeout",
      `import net from "node:net";
       const ran: string[] = [];
       export default async (input: { first: boolean }) => {
         if (input.first) {
           new net.Socket().setTimeout(300, () => ran.push("the first call's socket time-out"));
           return { pid: Deno.pid };
         }
         await new Promise((r) => setTimeout(r, 1_500));
         return { pid: Deno.pid, ran };
       };`,
    );
    const first = await runner.run(call(tool, { first: true }, { timeoutMs: 30_000 }));
    assert.ok(first.ok, JSON.stringify(first));
    const second = await runner.run(call(tool, { first: false }, { timeoutMs: 30_000 }));
    assert.ok(second.ok, JSON.stringify(second));
    assert.deepEqual((second.output as { ran: string[] }).ran, []);
  } finally {
    await runner.close();
    dir.cleanup();
  }
});
