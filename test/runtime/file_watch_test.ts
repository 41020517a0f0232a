/**
 * A tool cannot watch files (outside break attempt brk35). Each folder a `Deno.watchFs` watcher covers is an
 * inotify watch, a kernel object counted per user of the host: a `read: true` tool's module load watched
 * `/usr`, `/root`, `/work`… and its warm process held 98,470 watches (half of the user's `max_user_watches`,
 * kernel memory outside its memory limit) for every later call; two such processes leave the runtime's user
 * none. `Deno.watchFs`, and Node's `fs.watch` and `fs.promises.watch` which ride on it, are refused; the
 * process holds no watch. Real sandbox processes; the watches are counted in the process's `/proc` entries.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { ToolRunner } from "../../pkg/runtime/tool_runner.ts";
import { call, ToolDir } from "./_helpers.ts";

/** The inotify watches process `pid` holds, from its descriptors' `fdinfo`. */
function inotifyWatches(pid: number): number {
  let watches = 0;
  for (const entry of Deno.readDirSync(`/proc/${pid}/fdinfo`)) {
    try {
      watches += Deno.readTextFileSync(`/proc/${pid}/fdinfo/${entry.name}`).match(/^inotify wd:/gm)?.length ??
        0;
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e; // a descriptor closed meanwhile
    }
  }
  return watches;
}

Deno.test({
  name: "brk35: a tool holds no file watch, from its module's load or from a call (Deno's and Node's)",
  ignore: Deno.build.os !== "linux",
  async fn() {
    const dir = new ToolDir();
    const data = Deno.makeTempDirSync({ prefix: "compozy-file-watch-" });
    const runner = new ToolRunner({ maxWarmPerKey: 1, startTimeoutMs: 60_000 });
    try {
      for (let i = 0; i < 30; i++) Deno.mkdirSync(join(data, `folder${i}`));
      const tool = dir.tool(
        "watcher",
        `import fs from "node:fs";
         const dir = ${JSON.stringify(data)};
         const outcomes: Record<string, string> = {};
         const attempt = (name: string, watch: () => unknown) => {
           try {
             watch();
             outcomes[name] = "watching";
           } catch (e) {
             outcomes[name] = (e as Error).name;
           }
         };
         // Node's watcher reports the refusal as an "error" event.
         const nodeWatch = (name: string) => () =>
           fs.watch(dir, { recursive: true }).on("error", (e) => (outcomes[name] = e.name));
         attempt("load: Deno.watchFs", () => Deno.watchFs(dir));
         attempt("load: fs.watch", nodeWatch("load: fs.watch"));
         export default async () => {
           attempt("call: Deno.watchFs", () => Deno.watchFs(dir, { recursive: false }));
           attempt("call: fs.watch", nodeWatch("call: fs.watch"));
           // The event comes a turn later; a watcher that works sends none (2 s is not a timing: either way).
           for (let i = 0; i < 100 && outcomes["call: fs.watch"] === "watching"; i++) {
             await new Promise((r) => setTimeout(r, 20));
           }
           try {
             // A watcher that works waits for an event: it is stopped after a second instead.
             await fs.promises.watch(dir, { signal: AbortSignal.timeout(1_000) })[Symbol.asyncIterator]().next();
             outcomes["call: fs.promises.watch"] = "watching";
           } catch (e) {
             outcomes["call: fs.promises.watch"] = (e as Error).name;
           }
           return outcomes;
         };`,
      );
      const result = await runner.run(call(tool, {}, { permissions: { read: [data] }, timeoutMs: 60_000 }));
      assert.ok(result.ok, JSON.stringify(result));
      const [pid] = runner.stats().pids;
      // Before: 30 watches here (a folder each), held by the warm process for every later call.
      assert.equal(inotifyWatches(pid), 0);
      assert.deepEqual(result.output, {
        "load: Deno.watchFs": "NotCapable",
        "load: fs.watch": "NotCapable",
        "call: Deno.watchFs": "NotCapable",
        "call: fs.watch": "NotCapable",
        "call: fs.promises.watch": "NotCapable",
      });
    } finally {
      await runner.close();
      dir.cleanup();
      Deno.removeSync(data, { recursive: true });
    }
  },
});
