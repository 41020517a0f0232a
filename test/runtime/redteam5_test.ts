/**
 * Red team 5: attacks on the sandbox from inside a tool, beyond the earlier suites (docs/runtime-sandbox.md,
 * "Red team 5"). Real sandbox processes; each test failed on the code before its fix.
 */
import assert from "node:assert/strict";
import { ToolRunner } from "../../pkg/runtime/tool_runner.ts";
import { call, ToolDir } from "./_helpers.ts";

Deno.test("red team 5: no node: API reads the call channel (fd 0), so later calls stay in their warm process", async () => {
  const dir = new ToolDir();
  const runner = new ToolRunner({ maxWarmPerKey: 1, startTimeoutMs: 60_000 });
  try {
    // The first call tries every way Node's layer reaches fd 0 by number and leaves each reader pending.
    // Before: the readers took later calls' frames, and each such call ran again in a fresh process.
    const tool = dir.tool(
      "fd0",
      `import fs from "node:fs";
       import net from "node:net";
       import tty from "node:tty";
       const seen: Record<string, string> = {};
       const got = (how: string) => (data: unknown) => { seen[how] = "read " + String(data).length + " bytes"; };
       const refused = (how: string) => (e: unknown) => { seen[how] ??= "refused: " + (e as Error).message; };
       function arm() {
         fs.read(0, Buffer.alloc(65536), 0, 65536, null, (e, n) => e ? refused("fs.read")(e) : (got("fs.read")(n), arm()));
         fs.readFile(0, (e, b) => e ? refused("fs.readFile")(e) : got("fs.readFile")(b));
         try { fs.readSync(0, Buffer.alloc(1)); seen["fs.readSync"] = "read"; } catch (e) { refused("fs.readSync")(e); }
         const stream = fs.createReadStream("", { fd: 0 });
         stream.on("data", got("fs.createReadStream")).on("error", refused("fs.createReadStream"));
         try {
           new net.Socket({ fd: 0 }).on("data", got("net.Socket")).on("error", refused("net.Socket"));
         } catch (e) { refused("net.Socket")(e); }
         try {
           new tty.ReadStream(0).on("data", got("tty.ReadStream")).on("error", refused("tty.ReadStream"));
         } catch (e) { refused("tty.ReadStream")(e); }
       }
       let armed = false;
       export default async (input: { n: number }) => {
         if (!armed) { armed = true; arm(); await new Promise((r) => setTimeout(r, 300)); }
         return { n: input.n, pid: Deno.pid, seen };
       };`,
    );
    const pids = new Set<number>();
    let seen: Record<string, string> = {};
    for (let n = 0; n < 5; n++) {
      const result = await runner.run(call(tool, { n }, { timeoutMs: 30_000 }));
      assert.ok(result.ok, `call ${n}: ${JSON.stringify(result).slice(0, 500)}`);
      const out = result.output as { n: number; pid: number; seen: Record<string, string> };
      assert.equal(out.n, n);
      pids.add(out.pid);
      seen = out.seen;
    }
    const ways = [
      "fs.read",
      "fs.readFile",
      "fs.readSync",
      "fs.createReadStream",
      "net.Socket",
      "tty.ReadStream",
    ];
    for (const way of ways) {
      assert.match(seen[way] ?? "no answer", /^refused/, `${way}: ${JSON.stringify(seen)}`);
    }
    assert.equal(pids.size, 1, `calls ran again in fresh processes: ${[...pids]}`);
  } finally {
    await runner.close();
    dir.cleanup();
  }
});
