// Cold sandbox starts: n calls, each with a different read grant, so each starts a process of its own.
// Run from a checkout root: /usr/bin/time -f "%e s wall %U user %S sys" deno run -A --no-check PATH N
// (compare N=0 with N=40; the difference / 40 is one cold start's CPU, children included).
import { ToolRunner } from "../pkg/runtime/tool_runner.ts";
import { call, ToolDir } from "../test/runtime/_helpers.ts";
const n = Number(Deno.args[0] ?? "0");
const dir = new ToolDir();
const tool = dir.tool("t", "export default (x: unknown) => x;");
const runner = new ToolRunner({ maxWarmPerKey: 1, startTimeoutMs: 60_000 });
await runner.run(call(tool, { i: -1 }));
for (let i = 0; i < n; i++) {
  const r = await runner.run(call(tool, { i }, { permissions: { read: [`/tmp/x${i}`] } }));
  if (!r.ok) throw new Error(JSON.stringify(r));
}
await runner.close();
dir.cleanup();
