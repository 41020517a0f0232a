/**
 * Fixture for core_dump_test.ts: a runtime-like process (started with core dumps allowed) that runs a
 * grant-less tool which ends its own sandbox with SIGQUIT, then prints the entries of the tool's folder as
 * one JSON line. Usage: deno run -A _core_dump_host.ts <tool dir>
 */
import { ToolRunner } from "../../pkg/runtime/tool_runner.ts";
import { call } from "./_helpers.ts";

const dir = Deno.args[0];
const tool = `${dir}/quit.ts`;
// Its own pid needs no permission; SIGQUIT's default action dumps core.
Deno.writeTextFileSync(tool, `export default () => { Deno.kill(Deno.pid, "SIGQUIT"); };`);
const runner = new ToolRunner({ maxWarmPerKey: 1, startTimeoutMs: 60_000 });
try {
  const result = await runner.run(call(tool, null, { timeoutMs: 30_000 }));
  if (result.ok) throw new Error("the tool returned instead of ending its sandbox");
} finally {
  await runner.close();
}
console.log(JSON.stringify([...Deno.readDirSync(dir)].map((e) => e.name).sort()));
