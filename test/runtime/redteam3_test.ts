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
