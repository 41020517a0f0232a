/**
 * Nothing of one call outlives it (issue 10, hole 3): work a tool leaves behind in its warm sandbox —
 * timers, intervals, fetches, late logs, raw writes to fd 1, monkeypatched intrinsics, a spinning loop —
 * never acts in, slows, or is attributed to a later call. Real sandbox processes and a real loopback server.
 */
import assert from "node:assert/strict";
import { type ToolResult, ToolRunner } from "../../pkg/runtime/tool_runner.ts";
import { call, CONTEXT, eventually, processAlive, ToolDir } from "./_helpers.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function output(result: ToolResult): unknown {
  assert.ok(result.ok, `expected success, got ${JSON.stringify(!result.ok && result.failure)}`);
  return result.output;
}

/** A context of another execution, so a misattributed line would carry someone else's ids. */
const OTHER = { ...CONTEXT, workflowExecId: "wf-exec-2", taskExecId: "task-exec-2" };

Deno.test("nothing of one call outlives it", async (t) => {
  const dir = new ToolDir();
  const runner = new ToolRunner({ maxWarmPerKey: 1 });
  let requests = 0;
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, () => {
    requests++;
    return new Response("ok");
  });

  try {
    await t.step("a timer that spins after the return does not burn the next call", async () => {
      const tool = dir.tool(
        "spin_timer",
        `export default (mode: string) => {
           if (mode === "leave") { setTimeout(() => { for (;;) {} }, 50); return 1; }
           return "served";
         };`,
      );
      assert.equal(output(await runner.run(call(tool, "leave"))), 1);
      await sleep(150);
      const next = await runner.run(call(tool, "next", { timeoutMs: 5_000 }));
      assert.equal(output(next), "served", "the next call is not blamed for the left-over timer");
    });

    await t.step("an interval that fetches stops sending when the call ends", async () => {
      const url = `http://127.0.0.1:${server.addr.port}/`;
      const tool = dir.tool(
        "interval_fetch",
        `export default (url: string) => {
           setInterval(() => { fetch(url).then((r) => r.text()).catch(() => {}); }, 10);
           return new Promise((r) => setTimeout(() => r("sent"), 60));
         };`,
      );
      const permissions = { net: [`127.0.0.1:${server.addr.port}`] };
      assert.equal(output(await runner.run(call(tool, url, { permissions }))), "sent");
      const atEnd = requests;
      assert.ok(atEnd > 0, "the interval ran during the call");
      await sleep(300);
      // One request may have been in flight as the call ended; an interval still running sends dozens.
      assert.ok(requests - atEnd <= 1, `${requests - atEnd} requests after the call ended`);
    });

    await t.step("a late console.log never lands in the next call's logs", async () => {
      const tool = dir.tool(
        "late_log",
        `export default async (input: { mode: string; secret?: string }) => {
           if (input.mode === "leave") {
             setTimeout(() => console.log("late timer " + input.secret), 50);
             const ch = new MessageChannel();
             ch.port1.onmessage = () => { console.log("late message " + input.secret); ch.port1.close(); };
             ch.port2.postMessage(0);
             Promise.resolve().then(() => new Promise((r) => setTimeout(r, 40)))
               .then(() => console.error("late promise " + input.secret));
             return "left";
           }
           console.log("mine");
           await new Promise((r) => setTimeout(r, 300));
           return "waited";
         };`,
      );
      const firstLogs: string[] = [];
      const first = await runner.run(
        call(tool, { mode: "leave", secret: "exec-1-data" }, { onLog: (e) => firstLogs.push(e.message) }),
      );
      assert.equal(output(first), "left");
      const logs: string[] = [];
      const next = await runner.run(
        call(tool, { mode: "wait" }, { context: OTHER, onLog: (e) => logs.push(e.message) }),
      );
      assert.equal(output(next), "waited");
      // Its own line, once per run: the first call's leftovers may leave its process unfit, found only once
      // this call began there, and the call then runs again in another process (tool_runner.ts: a stale
      // sandbox "at most began it"), which logs its line again. Never a line of the first call.
      assert.ok(logs.length > 0 && logs.every((l) => l === "mine"), `only the call's own lines: ${logs}`);
      await sleep(100);
      assert.ok(!firstLogs.some((l) => l.includes("exec-1-data")), "nothing is logged after the return");
    });

    await t.step("monkeypatched intrinsics and globals do not reach later calls", async () => {
      const tool = dir.tool(
        "patcher",
        `export default async (mode: string) => {
           const g = globalThis as any;
           if (mode === "patch") {
             const attempts = [
               () => { JSON.stringify = () => '"pwned"'; },
               () => { Array.prototype.map = function () { return ["pwned"]; } as any; },
               () => { Promise.prototype.then = function () { return "pwned"; } as any; },
               () => { (Object.prototype as any).polluted = "pwned"; },
               () => { g.JSON = { stringify: () => '"pwned"', parse: () => "pwned" }; },
               () => { g.leaked = "pwned"; },
               () => { g.setTimeout = () => 0; },
               () => { (console as any).log = () => {}; },
               () => { (Deno as any).env = { get: () => "pwned" }; },
             ];
             let refused = 0;
             for (const attempt of attempts) {
               try { attempt(); } catch { refused++; }
             }
             return { refused };
           }
           return {
             json: JSON.stringify({ a: 1 }),
             map: [1, 2].map((x) => x * 2),
             then: await Promise.resolve(3),
             polluted: ({} as any).polluted ?? null,
             leaked: typeof g.leaked,
             timer: await new Promise((r) => setTimeout(() => r("fired"), 1)),
           };
         };`,
      );
      const patched = output(await runner.run(call(tool, "patch"))) as { refused: number };
      assert.ok(patched.refused >= 4, `intrinsics are frozen: ${patched.refused} patches refused`);
      const logs: string[] = [];
      const checked = await runner.run(call(tool, "check", { onLog: (e) => logs.push(e.message) }));
      assert.deepEqual(output(checked), {
        json: '{"a":1}',
        map: [2, 4],
        then: 3,
        polluted: null,
        leaked: "undefined",
        timer: "fired",
      });
    });

    await t.step("raw writes to fd 1 after the return are dropped and end the process", async () => {
      const tool = dir.tool(
        "raw_writer",
        `import { writeSync } from "node:fs";
         export default (mode: string) => {
           if (mode === "leave") {
             const ch = new MessageChannel();
             ch.port1.onmessage = () => { writeSync(1, "raw ".repeat(4096)); ch.port2.postMessage(0); };
             ch.port2.postMessage(0);
           }
           return Deno.pid;
         };`,
      );
      const pid = output(await runner.run(call(tool, "leave"))) as number;
      assert.ok(await eventually(() => !processAlive(pid)), "a process writing after its call is killed");
      const logs: string[] = [];
      const next = await runner.run(call(tool, "quiet", { onLog: (e) => logs.push(e.message) }));
      assert.notEqual(output(next), pid, "the next call runs in a fresh process");
      assert.deepEqual(logs, []);
    });

    await t.step(
      "a worker still spinning at the next call is killed; the call runs in a fresh one",
      async () => {
        const tool = dir.tool(
          "spin_message",
          `export default (mode: string) => {
           if (mode === "leave") {
             const ch = new MessageChannel();
             ch.port1.onmessage = () => { for (;;) {} };
             ch.port2.postMessage(0);
           }
           return Deno.pid;
         };`,
        );
        const pid = output(await runner.run(call(tool, "leave"))) as number;
        await sleep(50);
        const next = await runner.run(call(tool, "next", { timeoutMs: 8_000 }));
        assert.notEqual(output(next), pid, "the call ran in a fresh process, not blamed");
        assert.ok(await eventually(() => !processAlive(pid)), "the spinning process was killed");
      },
    );

    await t.step("left-over work that calls a tracked API after the return retires the worker", async () => {
      const url = `http://127.0.0.1:${server.addr.port}/late`;
      const tool = dir.tool(
        "late_fetch",
        `export default (input: { mode: string; url: string }) => {
           if (input.mode === "leave") {
             const ch = new MessageChannel();
             ch.port1.onmessage = () => { fetch(input.url).catch(() => {}); ch.port1.close(); };
             ch.port2.postMessage(0);
           }
           return Deno.pid;
         };`,
      );
      const permissions = { net: [`127.0.0.1:${server.addr.port}`] };
      const before = requests;
      const pid = output(await runner.run(call(tool, { mode: "leave", url }, { permissions }))) as number;
      assert.ok(await eventually(() => !processAlive(pid)), "the worker is retired");
      assert.equal(requests, before, "the late fetch was refused");
      const next = await runner.run(call(tool, { mode: "next", url }, { permissions }));
      assert.notEqual(output(next), pid);
    });
    await t.step("an exit by left-over work is not blamed on the call that is running", async () => {
      const tool = dir.tool(
        "late_exit",
        // Untracked left-over work (node:timers is refused): a message loop that exits after 100 ms.
        `const later = (ms: number, fn: () => void) => {
           const until = performance.now() + ms;
           const ch = new MessageChannel();
           ch.port1.onmessage = () => (performance.now() < until ? ch.port2.postMessage(0) : fn());
           ch.port2.postMessage(0);
         };
         export default async (mode: string) => {
           if (mode === "leave") later(100, () => Deno.exit(3));
           else await new Promise((r) => setTimeout(r, 400));
           return Deno.pid;
         };`,
      );
      const pid = output(await runner.run(call(tool, "leave"))) as number;
      const next = await runner.run(call(tool, "wait", { timeoutMs: 8_000 }));
      assert.notEqual(output(next), pid, "the call ran again in a fresh process");
    });
    // Break attempt brk42: Node hands out small buffers as views of one shared pool, and a view's `.buffer`
    // is the whole pool; it outlived the call, so the next call read the bytes an earlier execution's
    // buffers held ("user:B's password"), keeping nothing of its own between the calls.
    await t.step("the bytes of a call's small Buffers are not in the next call's Buffer pool", async () => {
      const tool = dir.tool(
        "buffer_pool",
        `const kept = Buffer.from("the module's own bytes");
         export default (input: { secret?: string }) => {
           if (input.secret !== undefined) {
             // Execution B, honest: a Basic authorization header.
             return { pid: Deno.pid, header: "Basic " + Buffer.from("user:" + input.secret).toString("base64") };
           }
           // Execution A: the backing store of a fresh one-byte Buffer, and what the module keeps.
           const pool = new TextDecoder().decode(new Uint8Array(Buffer.from("z").buffer));
           return { pid: Deno.pid, pool: pool.replace(/\\0/g, ""), kept: kept.toString() };
         };`,
      );
      const b = output(await runner.run(call(tool, { secret: "B's password" }, { context: OTHER }))) as {
        pid: number;
      };
      const a = output(await runner.run(call(tool, {}))) as { pid: number; pool: string; kept: string };
      assert.equal(a.pid, b.pid, "the same warm process ran both calls");
      assert.ok(!a.pool.includes("B's password"), `the pool held the earlier call's bytes: ${a.pool}`);
      assert.equal(a.kept, "the module's own bytes", "a Buffer the module keeps is left as it is");
    });
  } finally {
    await runner.close();
    await server.shutdown();
    dir.cleanup();
  }
});
