/**
 * Fixture for orphan_test.ts: a runtime-like process that starts sandboxes (one idle, one stuck in a loop),
 * prints their pids as one JSON line, then waits to be killed.
 * Usage: deno run -A _runner_host.ts <tool dir>
 */
import { ToolRunner } from "../../pkg/runtime/tool_runner.ts";
import { call } from "./_helpers.ts";

const dir = Deno.args[0];
const idle = `${dir}/idle.ts`;
const busy = `${dir}/busy.ts`;
Deno.writeTextFileSync(idle, `export default () => "idle";`);
Deno.writeTextFileSync(busy, `export default () => { for (;;) {} };`);
const runner = new ToolRunner();
await runner.warm(idle);
await runner.warm(busy);
void runner.run(call(busy, null, { timeoutMs: 600_000 }));
while (runner.stats().busy < 1) await new Promise((r) => setTimeout(r, 5));
console.log(JSON.stringify(runner.stats().pids));
await new Promise(() => {});
